/**
 * `health_check.watch: true`: the grpc prober holds one grpc.health.v1 Watch stream per endpoint and
 * counts each update as one probe result through the same thresholds as Check; a stream that fails
 * or ends is one failed result and is reopened after `interval`; a worker answering Watch with
 * UNIMPLEMENTED is polled with Check instead (logged once). Asserted by docs/architecture.md's health
 * deadline `(threshold + 1) × interval + timeout + 1s` and by counting calls at the worker.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError } from "../../src/config/config-error.js";
import { parseConfig } from "../../src/config/config-load.js";
import { Teardown, grpcConfig, sleep } from "../helpers/grpc-client.js";
import { GrpcHealthWorker } from "../helpers/grpc-health-worker.js";
import { metricValue, startFulcrum, waitFor, type StartedFulcrum } from "../helpers/harness.js";

const INTERVAL_MS = 200;
const TIMEOUT_MS = 200;
const THRESHOLD = 2;
const WATCH = `{ type: grpc, watch: true, interval: ${INTERVAL_MS}ms, timeout: ${TIMEOUT_MS}ms, healthy_threshold: ${THRESHOLD}, unhealthy_threshold: ${THRESHOLD} }`;
const DEADLINE_MS = (THRESHOLD + 1) * INTERVAL_MS + TIMEOUT_MS + 1000;

async function workers(own: Teardown, n: number, watch = true): Promise<GrpcHealthWorker[]> {
  const ws = Array.from({ length: n }, () => new GrpcHealthWorker({ watch }));
  await Promise.all(ws.map((w) => w.listen()));
  return own.add(ws, (all) => Promise.all(all.map((w) => w.close())));
}

async function fulcrumFor(own: Teardown, ws: readonly GrpcHealthWorker[]): Promise<StartedFulcrum> {
  return own.add(
    await startFulcrum(grpcConfig({ healthCheck: WATCH, endpoints: ws.map((w) => w.address) })),
    (f) => f.fulcrum.stop(0),
  );
}

function healthy(f: StartedFulcrum, w: GrpcHealthWorker): Promise<number> {
  return metricValue(f.registry, "fulcrum_endpoint_healthy", { cluster: "w", endpoint: w.address });
}

async function within(what: string, predicate: () => Promise<boolean> | boolean): Promise<void> {
  await waitFor(predicate, DEADLINE_MS, what);
}

describe("grpc health Watch", { timeout: 90_000 }, () => {
  it("one Watch stream per endpoint, no Check polling", async () => {
    const own = new Teardown();
    try {
      const ws = await workers(own, 2);
      await fulcrumFor(own, ws);
      await within("a stream to each worker", () => ws.every((w) => w.open === 1));
      await sleep(3 * INTERVAL_MS);
      for (const w of ws) {
        assert.equal(w.watches, 1, "one Watch call");
        assert.equal(w.updates, 1, "the current status, once");
        assert.equal(w.checks, 0, "no Check while Watch works");
      }
    } finally {
      await own.run();
    }
  });

  it("each update is one result: 2 NOT_SERVING updates with unhealthy_threshold 2 → unhealthy", async () => {
    const own = new Teardown();
    try {
      const [w] = (await workers(own, 1)) as [GrpcHealthWorker];
      const f = await fulcrumFor(own, [w]);
      await within("the stream", () => w.open === 1);

      w.setStatus("NOT_SERVING");
      await sleep(DEADLINE_MS);
      assert.equal(await healthy(f, w), 1, "one NOT_SERVING update is one failure: still healthy");
      w.setStatus("NOT_SERVING");
      await within("unhealthy after the second update", async () => (await healthy(f, w)) === 0);

      w.setStatus("SERVING");
      await sleep(DEADLINE_MS);
      assert.equal(await healthy(f, w), 0, "one SERVING update is one pass: still unhealthy");
      w.setStatus("SERVING");
      await within("healthy after the second update", async () => (await healthy(f, w)) === 1);
      assert.equal(w.watches, 1, "the same stream all along");
      assert.equal(w.updates, 5);
      assert.equal(w.checks, 0);
    } finally {
      await own.run();
    }
  });

  it("a stream that ends is one failed result and is reopened after interval", async () => {
    const own = new Teardown();
    try {
      const [w] = (await workers(own, 1)) as [GrpcHealthWorker];
      const f = await fulcrumFor(own, [w]);
      await within("the stream", () => w.open === 1);

      w.setStatus("NOT_SERVING"); // failure 1
      await sleep(2 * INTERVAL_MS);
      assert.equal(await healthy(f, w), 1);
      w.endStreams(); // failure 2: unhealthy
      await within("unhealthy after the stream ended", async () => (await healthy(f, w)) === 0);
      await within("the stream reopened", () => w.watches === 2 && w.open === 1);
      assert.equal(w.checks, 0);

      w.setStatus("SERVING");
      w.setStatus("SERVING");
      await within("healthy on the reopened stream", async () => (await healthy(f, w)) === 1);
    } finally {
      await own.run();
    }
  });

  it("Watch UNIMPLEMENTED: Check polling instead, logged once", async () => {
    const own = new Teardown();
    try {
      const ws = await workers(own, 2, false);
      const f = await fulcrumFor(own, ws);
      await within("Check polling on each worker", () => ws.every((w) => w.checks >= 3));
      for (const w of ws) assert.equal(w.watches, 1, "Watch is asked once");
      const fallbacks = f.lines.filter((l) =>
        /Watch unimplemented/.test(String((l as { msg?: string }).msg)),
      );
      assert.equal(fallbacks.length, 1, "logged once");

      const [a] = ws as [GrpcHealthWorker];
      a.setStatus("NOT_SERVING");
      await within("unhealthy by Check", async () => (await healthy(f, a)) === 0);
    } finally {
      await own.run();
    }
  });

  it("watch: true is valid only with type: grpc", () => {
    const yaml = `listeners:
  - { name: t, protocol: tcp, listen: "127.0.0.1:0", cluster: c }
clusters:
  - name: c
    health_check: { type: tcp, watch: true }
    endpoints: [{ address: "127.0.0.1:1" }]
`;
    assert.throws(
      () => parseConfig(yaml, { baseDir: process.cwd() }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.issues.some(
          (i) =>
            i.path === "clusters[0].health_check.watch" && i.message === "true applies only to type: grpc",
        ),
    );
    const ok = parseConfig(yaml.replace("type: tcp", "type: grpc"), {
      baseDir: process.cwd(),
    });
    assert.equal(ok.clusters[0]?.health_check?.watch, true);
  });
});
