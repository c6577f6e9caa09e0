/**
 * `health_check.watch: true`: the grpc prober holds one grpc.health.v1 Watch stream per endpoint;
 * each update is one probe result through the same thresholds as Check, and while the stream is
 * quiet its last status counts again every `interval` (a worker sends only changes); a stream that
 * fails or ends, or sends nothing within `timeout` of opening, is one failed result and is reopened
 * after `interval`; a worker answering Watch with UNIMPLEMENTED is polled with Check instead (logged
 * once). The test worker sends only changes, as grpc-go and grpc-java do. Asserted by docs/architecture.md's health
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

  it("one NOT_SERVING update, then silence: unhealthy by the deadline; one SERVING: healthy again", async () => {
    const own = new Teardown();
    try {
      const [w] = (await workers(own, 1)) as [GrpcHealthWorker];
      const f = await fulcrumFor(own, [w]);
      await within("the stream", () => w.open === 1);

      // A compliant worker sends a change once; its repetition every interval makes the threshold.
      const down = Date.now();
      w.setStatus("NOT_SERVING");
      await within("unhealthy after one update", async () => (await healthy(f, w)) === 0);
      assert.ok(
        Date.now() - down >= (THRESHOLD - 1) * INTERVAL_MS - 50,
        "not before the threshold's repetitions",
      );
      w.setStatus("SERVING");
      await within("healthy after one update", async () => (await healthy(f, w)) === 1);
      assert.equal(w.watches, 1, "the same stream all along");
      assert.equal(w.updates, 3, "the first status and two changes: nothing else was sent");
      assert.equal(w.checks, 0);
    } finally {
      await own.run();
    }
  });

  it("a stream with no first answer within timeout is a failure; the worker is reopened", async () => {
    const own = new Teardown();
    try {
      const [w] = (await workers(own, 1)) as [GrpcHealthWorker];
      w.silent = true;
      const f = await fulcrumFor(own, [w]);
      await within("unhealthy: streams that never answer", async () => (await healthy(f, w)) === 0);
      assert.ok(w.watches >= THRESHOLD, `reopened after each silent stream (${w.watches} Watch calls)`);
      w.silent = false;
      await within("healthy once a reopened stream answers", async () => (await healthy(f, w)) === 1);
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

      w.endStreams(); // one failure; the reopened stream's SERVING is one pass
      await within("the stream reopened", () => w.watches === 2 && w.open === 1);
      assert.equal(await healthy(f, w), 1, "one failure is below unhealthy_threshold 2");
      w.setStatus("NOT_SERVING");
      w.endStreams(); // failures: the update, then the end
      await within("unhealthy after the stream ended", async () => (await healthy(f, w)) === 0);
      await within("the stream reopened again", () => w.watches === 3 && w.open === 1);
      assert.equal(w.checks, 0);

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
