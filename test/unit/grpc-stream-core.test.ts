/**
 * The gRPC stream core (src/grpc/proxied-stream.ts) without sockets: a test engine records what the
 * core asks of it (open an upstream stream on an endpoint, send request bytes, cancel, answer the
 * client) and plays the worker's side, on a real ClusterRuntime. Each case checks the decisions both
 * engines inherit: retries only before any response byte and within the retry buffer, distinct
 * endpoints per attempt, the client's status, every attempt accounted on its endpoint exactly once,
 * one outcome per stream.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { Registry } from "prom-client";
import type { Endpoint } from "../../src/balancer/endpoint-set.js";
import { parseConfig } from "../../src/config/config-load.js";
import { GrpcStatus } from "../../src/grpc/grpc-status.js";
import { ProxiedStream, RETRY_BUFFER_BYTES, type UpstreamFailure } from "../../src/grpc/proxied-stream.js";
import type { StreamOutcome, StreamOwner } from "../../src/grpc/stream-outcome.js";
import { createMetrics } from "../../src/metrics/metrics.js";
import { ClusterRuntime } from "../../src/runtime/cluster-runtime.js";

/** What happens when the core opens an upstream stream on an endpoint. */
type Opening = "open" | "connect-fails" | "refused-on-open";

interface TestUp {
  readonly endpoint: string;
  readonly headersEnded: boolean;
  readonly sent: Buffer[];
  ended: boolean;
  aborted: boolean;
}

interface Answer {
  readonly status: number;
  readonly message: string;
  readonly afterHeaders: boolean;
}

/** An engine with no HTTP/2 under it: it records the core's calls and lets the test be the worker. */
class TestStream extends ProxiedStream<TestUp> {
  readonly ups: TestUp[] = [];
  readonly answers: Answer[] = [];

  constructor(
    cluster: ClusterRuntime,
    owner: StreamOwner,
    private readonly openings: (address: string) => Opening,
    options: { timeout?: string; requestEnded?: boolean } = {},
  ) {
    super(
      { cluster, clientAddress: "127.0.0.1", affinityKey: undefined, queueKeys: { priority: 0, flow: "" } },
      "/test.Echo/Unary",
      owner,
    );
    this.begin(options.timeout, options.requestEnded ?? false);
  }

  get current(): TestUp | undefined {
    return this.up;
  }

  get phaseNow(): string {
    return this.phase;
  }

  protected override openOn(endpoint: Endpoint): void {
    const opening = this.openings(endpoint.address);
    if (opening === "connect-fails") return this.connectFailed(endpoint, "ECONNREFUSED");
    if (opening === "refused-on-open") return this.refusedOnOpen(endpoint, "ERR_HTTP2_GOAWAY_SESSION");
    const headersEnded = this.headersEndRequest;
    const up: TestUp = {
      endpoint: endpoint.address,
      headersEnded,
      sent: [],
      ended: headersEnded,
      aborted: false,
    };
    this.ups.push(up);
    this.up = up;
    this.opened(endpoint, headersEnded);
  }

  protected override sendUp(up: TestUp, data: Buffer, end: boolean): void {
    if (data.length > 0) up.sent.push(data);
    if (end) up.ended = true;
  }

  protected override abortUp(up: TestUp): void {
    up.aborted = true;
  }

  protected override answerClient(
    status: number,
    message: string,
    _explanation: string | undefined,
    afterHeaders: boolean,
  ): void {
    this.answers.push({ status, message, afterHeaders });
    // An answer ends the client's stream (END_STREAM on it), as in both engines.
    this.finish();
  }

  // ---- the test plays client and worker -----------------------------------------------------------

  clientSends(data: Buffer, end: boolean): boolean {
    return this.requestData(data, end);
  }

  workerResponds(endStream: boolean, status?: number): boolean {
    return this.responseHeaders(endStream, status === undefined ? undefined : String(status));
  }

  workerTrailers(status: number): boolean {
    const forwarded = this.responseTrailers(String(status));
    if (forwarded) {
      this.upstreamDone();
      this.finish();
    }
    return forwarded;
  }

  workerFails(failure: UpstreamFailure, code: number): void {
    this.upstreamFailed(failure, code);
  }

  clientGoes(): void {
    this.finish();
  }
}

interface Rig {
  readonly cluster: ClusterRuntime;
  readonly outcomes: StreamOutcome[];
  readonly owner: StreamOwner;
  /** Active streams counted on each endpoint. */
  active(): number[];
  close(): void;
}

function rig(endpoints: number, extra = ""): Rig {
  const list = Array.from({ length: endpoints }, (_, i) => `{ address: "127.0.0.1:${10_001 + i}" }`);
  const config = parseConfig(
    `listeners:
  - { name: g, protocol: grpc, listen: "127.0.0.1:0", cluster: c }
clusters:
  - { name: c, policy: round_robin, ${extra} endpoints: [${list.join(", ")}] }
`,
    { baseDir: process.cwd() },
  );
  const cluster = new ClusterRuntime(config.clusters[0] as (typeof config.clusters)[number], {
    log: pino({ level: "silent" }),
    metrics: createMetrics(new Registry()),
  });
  const outcomes: StreamOutcome[] = [];
  return {
    cluster,
    outcomes,
    owner: { streamDone: (_cluster, outcome) => outcomes.push(outcome) },
    active: () => cluster.endpoints.endpoints.map((e) => cluster.endpoints.activeOf(e)),
    close: () => cluster.stop(),
  };
}

const open = (): Opening => "open";
const MESSAGE = Buffer.alloc(100, 1);

describe("gRPC stream core (both engines' decisions, no sockets)", { timeout: 10_000 }, () => {
  it("a call the worker answers: one attempt, the request sent whole, the count released once, one outcome", () => {
    const r = rig(2);
    try {
      const s = new TestStream(r.cluster, r.owner, open);
      assert.equal(s.clientSends(MESSAGE, true), true);
      assert.deepEqual(r.active(), [1, 0], "the attempt counts on its endpoint while it runs");
      assert.equal(s.workerResponds(false), true);
      assert.equal(s.workerTrailers(GrpcStatus.OK), true);
      assert.equal(s.ups.length, 1);
      assert.deepEqual(Buffer.concat(s.ups[0]?.sent ?? []), MESSAGE);
      assert.equal(s.ups[0]?.ended, true);
      assert.deepEqual(r.active(), [0, 0]);
      assert.deepEqual(
        r.outcomes.map((o) => [o.status, o.retries, o.bytesIn, o.endpoint]),
        [[GrpcStatus.OK, 0, 100, "127.0.0.1:10001"]],
      );
      assert.equal(s.answers.length, 0, "Fulcrum answered nothing of its own");
    } finally {
      r.close();
    }
  });

  it("a request that ended with its headers opens the upstream stream with END_STREAM on its HEADERS", () => {
    const r = rig(1);
    try {
      const s = new TestStream(r.cluster, r.owner, open, { requestEnded: true });
      assert.equal(s.ups[0]?.headersEnded, true);
      assert.deepEqual(s.ups[0]?.sent, []);
    } finally {
      r.close();
    }
  });

  it("refused before any response byte: replayed whole on the next endpoint, counted there only", () => {
    const r = rig(3);
    try {
      const s = new TestStream(r.cluster, r.owner, open);
      s.clientSends(MESSAGE, false);
      s.workerFails("refused", 7);
      assert.deepEqual(
        s.ups.map((u) => u.endpoint),
        ["127.0.0.1:10001", "127.0.0.1:10002"],
      );
      assert.deepEqual(Buffer.concat(s.ups[1]?.sent ?? []), MESSAGE, "the buffered request was replayed");
      assert.deepEqual(r.active(), [0, 1, 0]);
      s.clientSends(MESSAGE, true);
      assert.equal(s.workerResponds(false), true);
      assert.equal(s.workerTrailers(GrpcStatus.OK), true);
      assert.deepEqual(r.active(), [0, 0, 0]);
      assert.deepEqual(
        r.outcomes.map((o) => [o.status, o.retries, o.endpoint]),
        [[GrpcStatus.OK, 1, "127.0.0.1:10002"]],
      );
    } finally {
      r.close();
    }
  });

  it("reset after the response headers: never retried, the reset's status in trailers, upstream accounted once", () => {
    const r = rig(2);
    try {
      const s = new TestStream(r.cluster, r.owner, open);
      s.clientSends(MESSAGE, true);
      s.workerResponds(false);
      s.workerFails("refused", 7);
      assert.equal(s.ups.length, 1, "no second attempt after response bytes");
      assert.deepEqual(
        s.answers.map((a) => [a.status, a.afterHeaders]),
        [[GrpcStatus.UNAVAILABLE, true]],
      );
      assert.deepEqual(r.active(), [0, 0]);
      assert.equal(r.outcomes.length, 1);
    } finally {
      r.close();
    }
  });

  it("a request past the retry buffer is not replayed: a refusal becomes UNAVAILABLE", () => {
    const r = rig(2);
    try {
      const s = new TestStream(r.cluster, r.owner, open);
      s.clientSends(Buffer.alloc(RETRY_BUFFER_BYTES), false);
      s.clientSends(Buffer.alloc(1), false);
      s.workerFails("refused", 7);
      assert.equal(s.ups.length, 1);
      assert.equal(s.answers[0]?.status, GrpcStatus.UNAVAILABLE);
      assert.equal(s.answers[0]?.afterHeaders, false, "trailers-only before any response header");
      assert.equal(s.clientSends(MESSAGE, true), false, "request bytes after the answer are not taken");
      assert.deepEqual(r.active(), [0, 0]);
    } finally {
      r.close();
    }
  });

  it("connect failures: connect_attempts distinct endpoints, then UNAVAILABLE naming the cluster", () => {
    const r = rig(4, "connect_attempts: 3,");
    try {
      const tried: string[] = [];
      const s = new TestStream(r.cluster, r.owner, (address) => {
        tried.push(address);
        return "connect-fails";
      });
      assert.equal(new Set(tried).size, 3);
      assert.equal(s.answers.length, 1);
      assert.equal(s.answers[0]?.status, GrpcStatus.UNAVAILABLE);
      assert.match(
        s.answers[0]?.message ?? "",
        /no endpoint of cluster "c" could take the stream: .*ECONNREFUSED/,
      );
      assert.deepEqual(r.outcomes[0]?.retries, 2);
      assert.deepEqual(r.active(), [0, 0, 0, 0]);
    } finally {
      r.close();
    }
  });

  it("a connection refusing new streams (going away) is passed over like a refusal", () => {
    const r = rig(2);
    try {
      const s = new TestStream(r.cluster, r.owner, (a) => (a.endsWith("10001") ? "refused-on-open" : "open"));
      assert.deepEqual(
        s.ups.map((u) => u.endpoint),
        ["127.0.0.1:10002"],
      );
    } finally {
      r.close();
    }
  });

  it("the client goes away mid-response: CANCELLED, the upstream stream cancelled, released once", () => {
    const r = rig(1);
    try {
      const s = new TestStream(r.cluster, r.owner, open);
      s.clientSends(MESSAGE, true);
      s.workerResponds(false);
      s.clientGoes();
      s.clientGoes();
      assert.equal(s.ups[0]?.aborted, true);
      assert.deepEqual(r.active(), [0]);
      assert.deepEqual(
        r.outcomes.map((o) => o.status),
        [GrpcStatus.CANCELLED],
      );
      assert.equal(s.workerTrailers(GrpcStatus.OK), false, "a late status changes nothing");
      assert.equal(r.outcomes.length, 1);
    } finally {
      r.close();
    }
  });

  it("the worker's status is final: a failure after its trailers-only answer changes nothing", () => {
    const r = rig(1);
    try {
      const s = new TestStream(r.cluster, r.owner, open);
      s.clientSends(MESSAGE, true);
      assert.equal(s.workerResponds(true, GrpcStatus.NOT_FOUND), true);
      assert.equal(s.phaseNow, "trailed");
      s.workerFails("reset", 2);
      assert.equal(s.answers.length, 0);
      assert.equal(s.workerResponds(false), false, "a second response is not forwarded");
      s.clientGoes();
      assert.deepEqual(
        r.outcomes.map((o) => o.status),
        [GrpcStatus.NOT_FOUND],
      );
      assert.deepEqual(r.active(), [0]);
    } finally {
      r.close();
    }
  });

  it("grpc-timeout: DEADLINE_EXCEEDED, in trailers once the response started; the upstream stream cancelled", async () => {
    const r = rig(1);
    try {
      const s = new TestStream(r.cluster, r.owner, open, { timeout: "20m" });
      s.clientSends(MESSAGE, true);
      s.workerResponds(false);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(s.answers, [
        { status: GrpcStatus.DEADLINE_EXCEEDED, message: "deadline exceeded", afterHeaders: true },
      ]);
      assert.equal(s.ups[0]?.aborted, true);
      assert.equal(s.current, undefined, "the attempt is over");
      assert.deepEqual(r.active(), [0]);
      assert.equal(r.outcomes[0]?.status, GrpcStatus.DEADLINE_EXCEEDED);
    } finally {
      r.close();
    }
  });

  it("no endpoint at all: UNAVAILABLE at once, trailers-only, nothing opened", () => {
    const r = rig(1);
    try {
      const endpoint = r.cluster.endpoints.endpoints[0] as Endpoint;
      r.cluster.endpoints.setDrained(endpoint.address, true);
      const s = new TestStream(r.cluster, r.owner, open);
      assert.equal(s.ups.length, 0);
      assert.equal(s.answers[0]?.status, GrpcStatus.UNAVAILABLE);
      assert.equal(s.answers[0]?.afterHeaders, false);
      assert.equal(r.outcomes[0]?.endpoint, undefined);
    } finally {
      r.close();
    }
  });
});
