/**
 * Every log line is one JSON object with each key once: a child logger that repeats a binding of
 * its parent (`component`, `cluster`) writes the key twice, which JSON.parse hides and log shippers
 * resolve each their own way. A run that logs from every component — health transitions, load
 * metrics, DNS discovery, listeners, upstream pools, admin drain, reload, stop — is captured raw and
 * each line is scanned.
 */
import assert from "node:assert/strict";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Registry } from "prom-client";
import { loadConfigFile } from "../../src/config/config-load.js";
import { createLogger } from "../../src/log/logger.js";
import { createMetrics } from "../../src/metrics/metrics.js";
import { Fulcrum } from "../../src/runtime/fulcrum.js";
import { adminPost } from "../helpers/admin-client.js";
import { echoClient, grpcEngine, who } from "../helpers/grpc-client.js";
import { duplicateKeys } from "../helpers/json-duplicate-keys.js";
import { connectAndGreet, closeSocket, waitFor } from "../helpers/harness.js";

const FAST_HEALTH =
  "{ type: HC, interval: 100ms, timeout: 100ms, healthy_threshold: 1, unhealthy_threshold: 1 }";

function configYaml(threads: number, live: string, extraEndpoint: string): string {
  return `threads: ${threads}
log: { level: trace }
drain_timeout: 1s
admin: { listen: "127.0.0.1:0" }
listeners:
  - { name: t, protocol: tcp, listen: "127.0.0.1:0", cluster: tc }
  - { name: g, protocol: grpc, engine: ${grpcEngine()}, listen: "127.0.0.1:0", cluster: gc }
clusters:
  - name: tc
    endpoints: [{ address: "${live}" }, { address: "127.0.0.1:1" }${extraEndpoint}]
    health_check: ${FAST_HEALTH.replace("HC", "tcp")}
  - name: gc
    policy: least_loaded
    load_metrics: { port: 1, interval: 100ms }
    endpoints: [{ address: "127.0.0.1:1" }]
    health_check: ${FAST_HEALTH.replace("HC", "grpc")}
  - name: dc
    discovery: dns
    dns_refresh: 100ms
    endpoints: [{ address: "localhost:1" }]
`;
}

/** A TCP worker that greets with a line, as the harness' clients expect. */
async function greeter(): Promise<{ server: Server; address: string }> {
  const server = createServer((s) => {
    s.on("error", () => s.destroy()); // health probes connect and reset
    s.end("hi\n");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, address: `127.0.0.1:${(server.address() as { port: number }).port}` };
}

describe("log lines", { timeout: 60_000 }, () => {
  it("finds repeated keys in raw JSON (the scan itself)", () => {
    assert.deepEqual(duplicateKeys('{"a":1,"b":{"a":2},"c":[{"a":3,"a":4}],"a":"}\\"a"}'), ["a", "a"]);
    assert.deepEqual(duplicateKeys('{"component":"x","k":"component","v":["component"]}'), []);
  });

  for (const threads of [1, 2]) {
    it(`no line repeats a key (threads: ${threads}): health, load metrics, DNS, traffic, drain, reload, stop`, async () => {
      const raw: string[] = [];
      const log = createLogger({ level: "trace", destination: { write: (s: string) => void raw.push(s) } });
      const dir = mkdtempSync(join(tmpdir(), "fulcrum-log-"));
      const worker = await greeter();
      const file = join(dir, "fulcrum.yaml");
      writeFileSync(file, configYaml(threads, worker.address, ""));
      const fulcrum = await Fulcrum.start(loadConfigFile(file), {
        log,
        metrics: createMetrics(new Registry(), { processMetrics: false }),
        configFile: file,
      });
      try {
        const has = (msg: string, component: string): boolean =>
          raw.some((l) => l.includes(`"msg":"${msg}"`) && l.includes(`"component":"${component}"`));
        await waitFor(() => has("endpoint unhealthy", "health"), 5000, "a health transition");
        await waitFor(
          () => raw.some((l) => l.includes('"component":"load-metrics"')),
          5000,
          "a load-metrics line",
        );
        const port = Number(/:(\d+)$/.exec(fulcrum.addressOf("t"))?.[1]);
        const { socket } = await connectAndGreet(port);
        await closeSocket(socket);
        const client = echoClient(fulcrum.addressOf("g"));
        try {
          const answer = await who(client, { deadlineMs: 2000 });
          assert.equal(answer.ok, false, "no healthy endpoint in gc");
        } finally {
          client.close();
        }
        const admin = fulcrum.adminAddress ?? "";
        const drained = await adminPost(admin, "/endpoints/drain", {
          cluster: "tc",
          address: worker.address,
        });
        assert.equal(drained.status, 200, drained.text);
        writeFileSync(file, configYaml(threads, worker.address, ', { address: "127.0.0.1:2" }'));
        const reloaded = await adminPost(admin, "/reload", {});
        assert.equal(reloaded.status, 200, reloaded.text);
        await waitFor(() => has("endpoints changed", "cluster"), 5000, "the reload's endpoint change");
      } finally {
        await fulcrum.stop(0);
        await new Promise((r) => worker.server.close(r));
        rmSync(dir, { recursive: true, force: true });
      }
      const lines = raw
        .join("")
        .split("\n")
        .filter((l) => l !== "");
      if (process.env.SHOW_LINES) console.log(lines.join("\n"));
      assert.ok(lines.length > 10, `a run that logs: ${lines.length} lines`);
      const repeated = lines
        .map((l) => ({ line: l, keys: duplicateKeys(l) }))
        .filter((x) => x.keys.length > 0);
      assert.deepEqual(repeated, [], "no log line repeats a key");
    });
  }
});
