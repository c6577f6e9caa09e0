/**
 * Differential test of the two gRPC engines (as Envoy tests its two HTTP/2 codecs against each
 * other): two Fulcrum instances, one on `engine: frames` and one on `engine: http2`, in front of the
 * same workers (a recording node:http2 worker, grpc-recording-worker.ts, and a raw-frames worker for
 * answers node:http2 will not send, h2-raw-worker.ts), get the same request sequences
 * (differential-sequences-*.ts), and for each sequence what the workers received (request header
 * fields, DATA bytes, trailers, END_STREAM, how the stream closed) and what the client received
 * (every frame of each stream and the connection's GOAWAY; or, for grpc-js calls, headers, messages,
 * status and trailers) must be the same through both.
 *
 * Each sequence runs once per engine, one after the other, on a client connection of its own (the
 * grpc-js sequences share each engine's channel); the workers' records are taken after each run, so
 * nothing of one sequence is seen by the next. The pair of Fulcrums and the workers are started once
 * for all sequences: starting them per sequence would cost more than the sequences themselves. The
 * config names its engine per instance, so this file runs once whatever engine the test matrix
 * selects.
 *
 * What legitimately differs per hop and is therefore not compared (differential-views.ts):
 * - the order of fields of different names (RFC 9110 §5.3): fields are compared sorted by name,
 *   keeping one name's order;
 * - `:authority` is not masked: every client sends the same one (`AUTHORITY`), so the two instances'
 *   different listener ports never show, and an engine that rewrote it would be caught;
 * - `date` keeps its presence but not its value (the wall-clock second node:http2 stamps);
 * - `grpc-timeout` of grpc-js calls keeps its presence only: grpc-js computes it from its deadline
 *   at the moment it sends, so two calls never carry the same value (the raw client's fixed values
 *   are compared exactly, so an engine rewriting them is caught);
 * - stream ids, DATA frame boundaries and window updates: each hop's own choice (the bytes of a
 *   stream are compared, not how they were cut);
 * - the worker-side peer port: not part of what is recorded.
 * Nothing else is excluded: `user-agent` is the client's own on both paths (neither engine adds one or
 * a `via` or `x-forwarded-for`), so a hop that added or rewrote one would show.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, it } from "node:test";
import { DATE_MASK, describeDiff, workerView } from "../helpers/differential-views.js";
import { AUTHORITY, type Sequence, type Side } from "../helpers/differential-sequence.js";
import { ANSWER_SEQUENCES } from "../helpers/differential-sequences-answers.js";
import { GRPC_JS_SEQUENCES } from "../helpers/differential-sequences-grpc-js.js";
import { RAW_WORKER_SEQUENCES, rawAnswer } from "../helpers/differential-sequences-raw-worker.js";
import { REQUEST_SEQUENCES } from "../helpers/differential-sequences-requests.js";
import { Teardown, echoClient } from "../helpers/grpc-client.js";
import { RecordingWorker } from "../helpers/grpc-recording-worker.js";
import { H2RawWorker } from "../helpers/h2-raw-worker.js";
import { startFulcrum, type StartedFulcrum } from "../helpers/harness.js";

const TIMEOUT = { timeout: 90_000 };
const ENGINES = ["frames", "http2"] as const;
type Engine = (typeof ENGINES)[number];

const SEQUENCES: readonly Sequence[] = [
  ...REQUEST_SEQUENCES,
  ...ANSWER_SEQUENCES,
  ...RAW_WORKER_SEQUENCES,
  ...GRPC_JS_SEQUENCES,
];

/** A port that refuses connections: bound, then closed. */
async function refusedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** One Fulcrum config on `engine`: five grpc listeners, each before its own cluster. */
function config(engine: Engine, worker: string, rawWorker: string, refused: string): string {
  const listener = (name: string, cluster: string): string =>
    `  - { name: ${name}, protocol: grpc, engine: ${engine}, listen: "127.0.0.1:0", cluster: ${cluster} }`;
  const cluster = (name: string, endpoint: string, extra: string[] = []): string[] => [
    `  - name: ${name}`,
    "    policy: round_robin",
    "    health_check: { type: none }",
    // Failures are what many sequences test: no endpoint may be ejected for the sequences after them.
    "    outlier_detection: { consecutive_failures: 0 }",
    ...extra.map((l) => `    ${l}`),
    "    endpoints:",
    `      - address: "${endpoint}"`,
  ];
  return [
    "listeners:",
    listener("g", "w"),
    listener("none", "unhealthy"),
    listener("dead", "refusing"),
    listener("explain", "explained"),
    listener("raw", "rawframes"),
    "clusters:",
    ...cluster("w", worker),
    ...cluster("unhealthy", worker),
    ...cluster("refusing", refused, ["connect_timeout: 1s"]),
    ...cluster("explained", worker, ["explain: true"]),
    ...cluster("rawframes", rawWorker),
    "",
  ].join("\n");
}

describe("the frames and http2 engines: same requests, same results on both sides", TIMEOUT, () => {
  const own = new Teardown();
  const worker = new RecordingWorker();
  const rawWorker = new H2RawWorker(rawAnswer);
  const sides = {} as Record<Engine, Side & { readonly fulcrum: StartedFulcrum }>;

  before(async () => {
    own.add(worker, (w) => w.close());
    await worker.listen();
    own.add(rawWorker, (w) => w.close());
    await rawWorker.listen();
    const refused = `127.0.0.1:${await refusedPort()}`;
    for (const engine of ENGINES) {
      const fulcrum = own.add(
        await startFulcrum(config(engine, worker.address, rawWorker.address, refused)),
        (f) => f.fulcrum.stop(0),
      );
      fulcrum.fulcrum.cluster("unhealthy").endpoints.setHealth(worker.address, "unhealthy");
      const client = own.add(
        echoClient(fulcrum.target("g"), { channelOptions: { "grpc.default_authority": AUTHORITY } }),
        (c) => c.close(),
      );
      sides[engine] = { fulcrum, grpc: client };
    }
  });

  after(() => own.run());

  for (const c of SEQUENCES) {
    it(c.name, async () => {
      const views = {} as Record<Engine, unknown>;
      for (const engine of ENGINES) {
        const side = sides[engine];
        const client = await c.run(side.fulcrum.target(c.listener ?? "g"), side);
        const records = [...(await worker.take()), ...(await rawWorker.take())];
        const workerViews = records.map((r) => workerView(r, c.workerMasks ?? DATE_MASK));
        if (c.unorderedWorker) workerViews.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
        views[engine] = { worker: workerViews, client };
      }
      const diff = describeDiff(views.frames, views.http2, "frames", "http2");
      const context = JSON.stringify(views.frames);
      assert.deepStrictEqual(
        views.frames,
        views.http2,
        [
          `the engines differ on "${c.name}":`,
          ...(diff.length > 0 ? diff : ["(no path listed: see the diff below)"]),
          `what frames gave: ${context.length > 3000 ? `${context.slice(0, 3000)}…` : context}`,
          "(below: + frames, - http2)",
        ].join("\n  "),
      );
    });
  }
});
