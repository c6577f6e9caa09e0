/**
 * GOAWAY from a worker under load costs no call: Fulcrum opens no new stream on a session after its
 * GOAWAY, lets in-flight streams finish, and retries the streams the GOAWAY names as unprocessed
 * (ids above its last stream id) on a new session.
 */
import assert from "node:assert/strict";
import { constants as h2, type ServerHttp2Session, type ServerHttp2Stream } from "node:http2";
import { describe, it } from "node:test";
import type * as grpc from "@grpc/grpc-js";
import { Teardown, countNames, echoClient, grpcConfig, who, type Outcome } from "../helpers/grpc-client.js";
import { RawHttp2Worker, open, readBody, respondGrpc } from "../helpers/grpc-raw.js";
import { startGrpcWorkers, type GrpcTestWorker } from "../helpers/grpc-test-worker.js";
import { startFulcrum } from "../helpers/harness.js";

function closeWorkers(workers: readonly GrpcTestWorker[]): Promise<unknown> {
  return Promise.all(workers.map((w) => w.close()));
}

/** Runs `loops` concurrent call loops until `durationMs` passed or `maxCalls` calls were started. */
async function load(
  client: grpc.Client,
  options: { loops: number; durationMs: number; maxCalls: number; metadata?: Record<string, string> },
): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const until = performance.now() + options.durationMs;
  let started = 0;
  await Promise.all(
    Array.from({ length: options.loops }, async () => {
      while (performance.now() < until && started < options.maxCalls) {
        started++;
        outcomes.push(await who(client, { metadata: options.metadata }));
      }
    }),
  );
  return outcomes;
}

/**
 * A raw http2 worker that answers each call with its name after `delayMs`, and on each of its first
 * `goawaySessions` sessions, once `inFlight` streams are open on it, sends GOAWAY naming the id of the
 * `keep`-th lowest open stream: the `keep` lowest are answered, the ones above are never processed.
 */
class GoawayWorker {
  goaways = 0;
  /** Streams above a GOAWAY's last stream id, closed unanswered. */
  refused = 0;
  answered = 0;
  readonly raw: RawHttp2Worker;
  private readonly openStreams = new Map<ServerHttp2Session, Map<number, ServerHttp2Stream>>();
  private readonly lastIds = new Map<ServerHttp2Session, number>();

  constructor(
    readonly name: string,
    private readonly options: { delayMs: number; inFlight: number; keep: number; goawaySessions: number },
  ) {
    this.raw = new RawHttp2Worker((stream, _headers, session) => this.onStream(stream, session));
  }

  private onStream(stream: ServerHttp2Stream, session: ServerHttp2Session): void {
    const id = stream.id as number;
    let streams = this.openStreams.get(session);
    if (!streams) {
      streams = new Map();
      this.openStreams.set(session, streams);
      session.once("close", () => this.openStreams.delete(session));
    }
    streams.set(id, stream);
    let answered = false;
    stream.once("close", () => {
      streams.delete(id);
      const lastId = this.lastIds.get(session);
      if (!answered && lastId !== undefined && id > lastId) this.refused++;
    });
    void readBody(stream).then(() =>
      setTimeout(() => {
        if (!open(stream)) return;
        answered = true;
        this.answered++;
        respondGrpc(stream, Buffer.from(this.name));
      }, this.options.delayMs),
    );
    if (this.lastIds.has(session) || this.goaways >= this.options.goawaySessions) return;
    if (streams.size < this.options.inFlight) return;
    const ids = [...streams.keys()].sort((x, y) => x - y);
    const lastId = ids[this.options.keep - 1] as number;
    this.lastIds.set(session, lastId);
    this.goaways++;
    session.goaway(h2.NGHTTP2_NO_ERROR, lastId);
  }
}

describe("grpc GOAWAY from workers", { timeout: 60_000 }, () => {
  it("grpc-js workers with max_connection_age 200 ms under load: 0 failed calls", async () => {
    const own = new Teardown();
    try {
      const workers = own.add(
        await startGrpcWorkers(["a", "b"], {
          serverOptions: { "grpc.max_connection_age_ms": 200, "grpc.max_connection_age_grace_ms": 2000 },
        }),
        closeWorkers,
      );
      const f = own.add(
        await startFulcrum(grpcConfig({ policy: "round_robin", endpoints: workers.map((w) => w.address) })),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const outcomes = await load(client, {
        loops: 8,
        durationMs: 2000,
        maxCalls: 5000,
        metadata: { "x-delay-ms": "20" },
      });
      const counts = countNames(outcomes);
      assert.equal(outcomes.filter((o) => !o.ok).length, 0, `failed calls: ${JSON.stringify(counts)}`);
      assert.ok(outcomes.length >= 100, `only ${outcomes.length} calls made`);
      // The premise: sessions were aged out and replaced several times.
      for (const w of workers) assert.ok(w.peers.size >= 3, `${w.name} saw ${w.peers.size} sessions`);
    } finally {
      await own.run();
    }
  });

  it("a raw worker's GOAWAY naming a last stream id below streams in flight: those are retried, 0 failed calls", async () => {
    const own = new Teardown();
    try {
      const goaway = new GoawayWorker("a", { delayMs: 50, inFlight: 6, keep: 3, goawaySessions: 2 });
      own.add(goaway.raw, (w) => w.close());
      await goaway.raw.listen();
      const [b] = own.add(await startGrpcWorkers(["b"]), closeWorkers);
      assert.ok(b);
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            policy: "round_robin",
            extra: ["connect_attempts: 3"],
            endpoints: [goaway.raw.address, b.address],
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const outcomes = await load(client, { loops: 16, durationMs: 10_000, maxCalls: 400 });
      const counts = countNames(outcomes);
      assert.equal(outcomes.length, 400);
      assert.equal(outcomes.filter((o) => !o.ok).length, 0, `failed calls: ${JSON.stringify(counts)}`);
      // The premise: both GOAWAYs went out with unprocessed streams above their last stream id.
      assert.equal(goaway.goaways, 2);
      assert.ok(goaway.refused >= 2, `${goaway.refused} streams refused by GOAWAY`);
      // Every call was processed exactly once.
      assert.equal(goaway.answered + b.calls, 400, JSON.stringify(counts));
      assert.equal(counts.a, goaway.answered);
    } finally {
      await own.run();
    }
  });
});
