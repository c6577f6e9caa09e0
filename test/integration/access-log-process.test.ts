/**
 * Access logs from a real Fulcrum process with worker threads: every worker thread's lines reach
 * stdout and are flushed when the process stops (SIGTERM right after the last call), and no line of
 * stdout is broken, so access lines and the ordinary log never interleave mid-line.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { startCli } from "../helpers/cli-process.js";
import { Teardown, callMany, echoClient, grpcEngine } from "../helpers/grpc-client.js";
import { startGrpcWorkers } from "../helpers/grpc-test-worker.js";

describe("access log of a process with worker threads", { timeout: 60_000 }, () => {
  it("threads: 2 — every stream's line is on stdout after SIGTERM, every stdout line whole", async () => {
    const own = new Teardown();
    try {
      const workers = own.add(await startGrpcWorkers(["a", "b"]), (ws) =>
        Promise.all(ws.map((w) => w.close())),
      );
      const file = join(mkdtempSync(join(tmpdir(), "fulcrum-access-")), "fulcrum.yaml");
      writeFileSync(
        file,
        `threads: 2
log: { level: debug }
listeners:
  - name: g
    protocol: grpc
    engine: ${grpcEngine()}
    listen: "127.0.0.1:0"
    cluster: w
    access_log: { enabled: true, sample: 1.0 }
clusters:
  - name: w
    policy: round_robin
    health_check: { type: none }
    endpoints:
${workers.map((w) => `      - address: "${w.address}"`).join("\n")}
`,
      );
      const proc = await startCli(["--config", file], 1);
      own.add(proc.child, (c) => {
        if (c.exitCode === null) c.kill("SIGKILL");
      });
      let stdout = "";
      proc.child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
      const [host, port] = proc.address("g").split(":");
      // Several connections, so the kernel spreads them over both worker threads.
      const clients = Array.from({ length: 6 }, () => echoClient({ host: host ?? "", port: Number(port) }));
      const outcomes = await Promise.all(clients.map((c) => callMany(c, 50, 5)));
      for (const c of clients) c.close();
      assert.ok(outcomes.flat().every((o) => o.ok));
      proc.child.kill("SIGTERM");
      assert.equal(await proc.exited(), 0, proc.stderr());

      // The capture starts where startCli stopped reading: its first piece may be a line's tail.
      const lines = stdout
        .split("\n")
        .slice(1)
        .filter((l) => l.length > 0);
      const broken = lines.filter((l) => {
        try {
          JSON.parse(l);
          return false;
        } catch {
          return true;
        }
      });
      assert.deepEqual(broken, [], "every stdout line is one JSON object");
      const access = proc.lines.filter((l) => l.msg === "access");
      assert.equal(access.length, 300, "one line per stream, all flushed");
      assert.ok(access.every((l) => l.grpc_code === "OK" && l.listener === "g"));
    } finally {
      await own.run();
    }
  });
});
