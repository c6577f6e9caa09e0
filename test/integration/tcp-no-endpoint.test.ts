/**
 * When nothing can serve: all endpoints unhealthy, ejected or drained → a new connection is closed at
 * once; all down but still marked healthy → closed after `connect_attempts` tries, and the failures
 * eject the endpoints (outlier detection). Every refusal is counted by reason.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { after, describe, it } from "node:test";
import { connect } from "node:net";
import { metricValue, startFulcrum, type StartedFulcrum } from "../helpers/harness.js";

/** Ports that refuse connections: bound once, then closed. */
async function deadPorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  for (let i = 0; i < n; i++) {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    servers.push(s);
  }
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** Connects and resolves with how long the proxy took to close the connection. */
function closedAfter(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const s = connect({ host: "127.0.0.1", port });
    s.on("data", () => reject(new Error("unexpected data")));
    s.on("error", () => {});
    s.once("close", () => resolve(performance.now() - started));
  });
}

describe("tcp with no endpoint to serve", { timeout: 30_000 }, () => {
  const started: StartedFulcrum[] = [];
  after(async () => {
    for (const f of started) await f.fulcrum.stop(0);
  });

  it("all down but marked healthy: closed after connect_attempts tries, then ejected and refused at once", async () => {
    const ports = await deadPorts(3);
    const f = await startFulcrum(`
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:0", cluster: dead }
clusters:
  - name: dead
    policy: round_robin
    connect_attempts: 2
    health_check: { type: none }
    outlier_detection: { consecutive_failures: 2, base_ejection_time: 30s, max_ejection_percent: 100 }
    endpoints:
${ports.map((p) => `      - address: 127.0.0.1:${p}`).join("\n")}
`);
    started.push(f);
    const port = f.target().port;
    await closedAfter(port);
    const cluster = f.fulcrum.cluster("dead");
    const failures = await metricValue(f.registry, "fulcrum_upstream_connect_failures_total", {
      cluster: "dead",
      endpoint: `127.0.0.1:${ports[0]}`,
    });
    assert.equal(failures, 1, "the first endpoint was tried once");
    assert.equal(
      await metricValue(f.registry, "fulcrum_downstream_connections_refused_total", {
        listener: "in",
        reason: "connect_failed",
      }),
      1,
    );
    // Two more connections: 4 more attempts, so every endpoint has failed twice in a row → ejected.
    await closedAfter(port);
    await closedAfter(port);
    assert.deepEqual(
      cluster.endpoints.endpoints.map((e) => e.ejected),
      [true, true, true],
    );
    const attemptsBefore = cluster.endpoints.endpoints.reduce((n, e) => n + cluster.endpoints.totalOf(e), 0);
    await closedAfter(port);
    const attemptsAfter = cluster.endpoints.endpoints.reduce((n, e) => n + cluster.endpoints.totalOf(e), 0);
    assert.equal(attemptsAfter, attemptsBefore, "no connect attempt once all are ejected");
    assert.equal(
      await metricValue(f.registry, "fulcrum_downstream_connections_refused_total", {
        listener: "in",
        reason: "no_healthy_endpoint",
      }),
      1,
    );
    assert.equal(
      await metricValue(f.registry, "fulcrum_outlier_ejections_total", {
        cluster: "dead",
        endpoint: `127.0.0.1:${ports[0]}`,
      }),
      1,
    );
  });

  it("all unhealthy or drained: closed at once without a connect attempt", async () => {
    const ports = await deadPorts(2);
    const f = await startFulcrum(`
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:0", cluster: c }
clusters:
  - name: c
    health_check: { type: none }
    endpoints:
${ports.map((p) => `      - address: 127.0.0.1:${p}`).join("\n")}
`);
    started.push(f);
    const set = f.fulcrum.cluster("c").endpoints;
    set.setHealth(`127.0.0.1:${ports[0]}`, "unhealthy");
    set.setDrained(`127.0.0.1:${ports[1]}`, true);
    await closedAfter(f.target().port);
    await closedAfter(f.target().port);
    assert.equal(
      await metricValue(f.registry, "fulcrum_downstream_connections_refused_total", {
        listener: "in",
        reason: "no_healthy_endpoint",
      }),
      2,
    );
    assert.equal(
      set.endpoints.reduce((n, e) => n + set.totalOf(e), 0),
      0,
      "no endpoint was tried",
    );
  });
});

describe("tcp connect retry keeps early client bytes", { timeout: 30_000 }, () => {
  it("bytes sent while the first endpoint refuses arrive at the endpoint that accepts", async () => {
    const [dead] = await deadPorts(1);
    const echo = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
    const echoPort = (echo.address() as { port: number }).port;
    const f = await startFulcrum(`
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:0", cluster: c }
clusters:
  - name: c
    policy: round_robin
    health_check: { type: none }
    endpoints:
      - address: 127.0.0.1:${dead}
      - address: 127.0.0.1:${echoPort}
`);
    try {
      // Round robin starts at the dead endpoint, so the first connection is retried on the echo one.
      const client = connect({ host: "127.0.0.1", port: f.target().port });
      client.write("sent before any upstream was connected");
      let got = "";
      client.on("data", (d: Buffer) => (got += d.toString()));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only got ${JSON.stringify(got)}`)), 5000);
        client.on("data", () => {
          if (got === "sent before any upstream was connected") {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      client.destroy();
      assert.equal(
        await metricValue(f.registry, "fulcrum_upstream_connect_failures_total", {
          cluster: "c",
          endpoint: `127.0.0.1:${dead}`,
        }),
        1,
      );
    } finally {
      await f.fulcrum.stop(0);
      await new Promise((r) => echo.close(r));
    }
  });
});
