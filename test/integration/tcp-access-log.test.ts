/**
 * Access logs of TCP listeners: one line per connection when it ends, with the bytes both ways, the
 * endpoint, retries and the close reason; a connection with no endpoint to serve it says why; none
 * when disabled.
 */
import assert from "node:assert/strict";
import { connect, createServer, type Server } from "node:net";
import { describe, it } from "node:test";
import {
  closeAll,
  connectAndGreet,
  endpointsYaml,
  startFulcrum,
  startWorkers,
  waitFor,
  type StartedFulcrum,
} from "../helpers/harness.js";
import type { SimTcpWorker } from "../../src/sim/sim-tcp-worker.js";

function yaml(endpoints: string, accessLog: string): string {
  return `listeners:
  - { name: t, protocol: tcp, listen: "127.0.0.1:0", cluster: c, access_log: ${accessLog} }
clusters:
  - name: c
    policy: round_robin
    health_check: { type: none }
    endpoints:
${endpoints}
`;
}

/** A port that refuses connections: bound once, then closed. */
async function deadPort(): Promise<number> {
  const s: Server = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Sends `payload`, reads the echo of all of it, half-closes and waits for the close. */
async function exchange(port: number, payload: Buffer): Promise<void> {
  const { socket } = await connectAndGreet(port);
  let echoed = 0;
  socket.on("data", (chunk: Buffer) => {
    echoed += chunk.length;
    if (echoed >= payload.length) socket.end();
  });
  socket.resume();
  const closed = new Promise((r) => socket.once("close", r));
  socket.write(payload);
  await closed;
}

describe("tcp access log", { timeout: 30_000 }, () => {
  it("a connection with known bytes: one line with the bytes, endpoint, retries and close reason", async () => {
    let f: StartedFulcrum | undefined;
    let workers: SimTcpWorker[] = [];
    try {
      workers = await startWorkers(["a"]);
      const a = workers[0] as SimTcpWorker;
      const dead = await deadPort();
      const endpoints = `      - address: 127.0.0.1:${dead}\n${endpointsYaml(workers)}`;
      f = await startFulcrum(yaml(endpoints, "{ enabled: true }"));
      const started = f;
      await exchange(f.target().port, Buffer.alloc(1000, 7));
      await waitFor(() => started.accessLines.length > 0, 5000, "an access line");
      assert.equal(f.accessLines.length, 1);
      const { time, pid, duration_ms: durationMs, ...rest } = f.accessLines[0] as Record<string, unknown>;
      assert.deepEqual(rest, {
        level: "info",
        msg: "access",
        listener: "t",
        protocol: "tcp",
        client: "127.0.0.1",
        cluster: "c",
        endpoint: `127.0.0.1:${a.port}`,
        close_reason: "done",
        bytes_in: 1000,
        bytes_out: 1002, // "a\n" then the echo
        retries: 1, // the dead endpoint first
        route: "policy",
      });
      assert.equal(pid, process.pid);
      assert.ok(typeof time === "string" && !Number.isNaN(Date.parse(time)));
      assert.ok(typeof durationMs === "number" && durationMs >= 0);
    } finally {
      await closeAll(f, workers);
    }
  });

  it("no endpoint: the line says no_healthy_endpoint and names none; enabled: false writes nothing", async () => {
    let f: StartedFulcrum | undefined;
    let g: StartedFulcrum | undefined;
    let workers: SimTcpWorker[] = [];
    try {
      workers = await startWorkers(["a"]);
      const a = workers[0] as SimTcpWorker;
      f = await startFulcrum(yaml(endpointsYaml(workers), "{ enabled: true, sample: 1 }"));
      f.fulcrum.cluster("c").endpoints.setHealth(`127.0.0.1:${a.port}`, "unhealthy");
      const port = f.target().port;
      await new Promise<void>((resolve) => {
        const s = connect({ host: "127.0.0.1", port });
        s.on("error", () => {});
        s.once("close", () => resolve());
      });
      const started = f;
      await waitFor(() => started.accessLines.length > 0, 5000, "an access line");
      const line = f.accessLines[0] as Record<string, unknown>;
      assert.deepEqual(
        [line.close_reason, line.bytes_in, line.bytes_out, line.retries],
        ["no_healthy_endpoint", 0, 0, 0],
      );
      assert.ok(!("endpoint" in line) && !("route" in line), JSON.stringify(line));

      g = await startFulcrum(yaml(endpointsYaml(workers), "{ enabled: false }"));
      await exchange(g.target().port, Buffer.from("hello"));
      await waitFor(() => a.connections.size === 0, 5000, "the worker's connection closed");
      await new Promise((r) => setTimeout(r, 100)); // the relay's release follows the last close
      assert.equal(g.accessLines.length, 0);
    } finally {
      await g?.fulcrum.stop(0);
      await closeAll(f, workers);
    }
  });
});
