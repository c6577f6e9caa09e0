/**
 * Overload control in TCP mode (src/tcp/tcp-connect.ts): `max_active_per_endpoint` caps the
 * connections relayed to an endpoint; a connection that finds every endpoint full waits in the
 * cluster's queue without an upstream connection and is connected when one closes; a full queue
 * (or none) closes it, counted as `at_capacity`.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, it } from "node:test";
import {
  closeSocket,
  connectAndGreet,
  endpointsYaml,
  metricValue,
  startFulcrum,
  startWorkers,
  waitFor,
} from "../helpers/harness.js";

function config(port: string, queue: string): string {
  return `listeners:
  - { name: t, protocol: tcp, listen: "127.0.0.1:0", cluster: c }
clusters:
  - name: c
    policy: least_connections
    health_check: { type: none }
    max_active_per_endpoint: 1
    queue: ${queue}
    endpoints:
${port}
`;
}

/** Connects and resolves once the proxy closed the connection without a byte. */
function closedUnserved(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port });
    s.on("data", () => reject(new Error("unexpected data")));
    s.on("error", () => {});
    s.once("close", () => resolve());
  });
}

describe("tcp overload control", { timeout: 30_000 }, () => {
  it("a connection beyond the cap waits without an upstream connection, and is served when one closes", async () => {
    const workers = await startWorkers(["a"]);
    const f = await startFulcrum(config(endpointsYaml(workers), "{ max_size: 5, timeout: 10s }"));
    try {
      const worker = workers[0];
      assert.ok(worker);
      const port = f.target("t").port;
      const first = await connectAndGreet(port);
      const second = connectAndGreet(port, { timeoutMs: 10_000 });
      await waitFor(() => f.fulcrum.cluster("c").queue.size === 1, 5000, "the second connection queued");
      assert.equal(worker.accepted, 1);
      await closeSocket(first.socket);
      const served = await second;
      assert.equal(served.worker, "a");
      assert.equal(worker.accepted, 2);
      await closeSocket(served.socket);
    } finally {
      await f.fulcrum.stop(0);
      await Promise.all(workers.map((w) => w.close()));
    }
  });

  it("without a queue a connection beyond the cap is closed, counted as at_capacity", async () => {
    const workers = await startWorkers(["a"]);
    const f = await startFulcrum(config(endpointsYaml(workers), "{ max_size: 0 }"));
    try {
      const port = f.target("t").port;
      const first = await connectAndGreet(port);
      await closedUnserved(port);
      assert.equal(
        await metricValue(f.registry, "fulcrum_downstream_connections_refused_total", {
          listener: "t",
          reason: "at_capacity",
        }),
        1,
      );
      assert.equal(workers[0]?.accepted, 1);
      await closeSocket(first.socket);
    } finally {
      await f.fulcrum.stop(0);
      await Promise.all(workers.map((w) => w.close()));
    }
  });
});
