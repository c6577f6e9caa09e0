/**
 * Defences of the gRPC listener against abusive HTTP/2 clients, on the wire (h2-frames-client.ts):
 * rapid reset (CVE-2023-44487), CONTINUATION flood (CVE-2024-27316 family), HPACK bomb, oversized
 * header lists, SETTINGS / PING / WINDOW_UPDATE floods, and the listener's timeouts (handshake, idle)
 * and half-closed clients. Fulcrum runs in this process, so its memory is `process.memoryUsage().rss`
 * and its sockets are this process's file descriptors.
 *
 * Each test accepts every answer a well-defended server may give (close the connection, reset the
 * stream, or absorb the load) and fails on what hurts: unbounded memory, streams reaching the worker
 * that the client already abandoned, leaked sockets, or a listener that stops serving other clients.
 * Every load is bounded in count and time.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { describe, it } from "node:test";
import { Teardown, echoClient, grpcConfig, grpcEngine, sleep, who } from "../helpers/grpc-client.js";
import { RawHttp2Worker, readBody, respondGrpc } from "../helpers/grpc-raw.js";
import {
  ERROR,
  H2FramesClient,
  SETTING,
  continuationFrame,
  dataFrame,
  encodeHeaderBlock,
  errorName,
  expectConnectionError,
  grpcMessage,
  grpcRequestHeaders,
  headerValue,
  headersFrame,
  hpackIndexed,
  hpackLiteralIndexed,
  hpackString,
  pingFrame,
  rstStreamFrame,
  settingsFrame,
  windowUpdateFrame,
  type ConnectOptions,
  type HeaderList,
  type StreamEnd,
} from "../helpers/h2-frames-client.js";
import { startFulcrum, waitFor } from "../helpers/harness.js";

const WORKER = "a";
const PATH = "/test.Echo/Unary";
const MiB = 1024 * 1024;

/**
 * The engine under test is `grpcEngine()`, the one `grpcConfig` configures. A server that ends an
 * abusive connection should say ENHANCE_YOUR_CALM (RFC 9113 §7); node:http2 says INTERNAL_ERROR
 * instead (nghttp2 reports the flood or the reset rate, and Node destroys the session with an error),
 * which RFC 9113 does not forbid (§5.4: a connection may be closed at any time) and which only the
 * `http2` engine is allowed.
 */
const NODE_HTTP2 = grpcEngine() === "http2";
const CALM: readonly number[] = [ERROR.ENHANCE_YOUR_CALM, ...(NODE_HTTP2 ? [ERROR.INTERNAL_ERROR] : [])];
/**
 * A stream refused for its header list: reset (REFUSED_STREAM, ENHANCE_YOUR_CALM or PROTOCOL_ERROR),
 * or the connection closed (COMPRESSION_ERROR when the decoder gives up, §4.3), or answered with
 * HTTP 431 / a gRPC error status (§10.5.1).
 */
const HEADER_REFUSALS: readonly number[] = [
  ERROR.REFUSED_STREAM,
  ERROR.ENHANCE_YOUR_CALM,
  ERROR.PROTOCOL_ERROR,
  ERROR.COMPRESSION_ERROR,
];

interface Rig {
  readonly worker: RawHttp2Worker;
  /** Streams open at the worker now. */
  readonly workerActive: () => number;
  readonly authority: string;
  connect(options?: ConnectOptions & { handshake?: boolean }): Promise<H2FramesClient>;
  request(extra?: HeaderList): [string, string][];
}

/**
 * A raw node:http2 worker (it counts every stream it receives, even one reset before its request
 * ended), Fulcrum in front of it with `listenerFields` added to the listener, then `body`; afterwards
 * a fresh grpc-js client must be served.
 */
async function withRig(body: (r: Rig) => Promise<void>, listenerFields = ""): Promise<void> {
  const own = new Teardown();
  try {
    let active = 0;
    const worker = own.add(
      new RawHttp2Worker((stream) => {
        active++;
        stream.once("close", () => active--);
        void readBody(stream).then(() => respondGrpc(stream, Buffer.from(WORKER)));
      }),
      (w) => w.close(),
    );
    await worker.listen();
    const yaml = grpcConfig({ endpoints: [worker.address] });
    // grpcConfig knows no timeouts or header limits: they join the listener's flow mapping.
    const withFields = listenerFields
      ? yaml.replace("protocol: grpc,", `protocol: grpc, ${listenerFields},`)
      : yaml;
    assert.ok(!listenerFields || withFields !== yaml, "listener fields applied");
    const f = own.add(await startFulcrum(withFields), (x) => x.fulcrum.stop(0));
    const target = f.target("g");
    const authority = `${target.host}:${target.port}`;
    await body({
      worker,
      workerActive: () => active,
      authority,
      connect: async (options = {}) => {
        const c = own.add(await H2FramesClient.connect(target, options), (x) => x.destroy());
        if (options.handshake ?? options.preface ?? true) await c.handshake();
        return c;
      },
      request: (extra = []) => grpcRequestHeaders(authority, PATH, extra),
    });
    const fresh = own.add(echoClient(target), (c) => c.close());
    const o = await who(fresh);
    assert.ok(o.ok, o.ok ? "" : `fresh client: status ${o.code} ${o.details}`);
    assert.equal(o.value.toString("utf8"), WORKER);
  } finally {
    await own.run();
  }
}

/** The highest RSS seen from construction to `stop()`, sampled every 5 ms, minus the RSS at construction. */
class RssGrowth {
  private readonly base = process.memoryUsage().rss;
  private peak = this.base;
  private readonly timer = setInterval(() => this.sample(), 5);

  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
  }

  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peak - this.base;
  }
}

function openFds(): number | undefined {
  return existsSync("/proc/self/fd") ? readdirSync("/proc/self/fd").length : undefined;
}

/** One unary call on a new stream of `c`, answered by the worker. */
async function assertServes(c: H2FramesClient, r: Rig): Promise<void> {
  const id = c.newStreamId();
  assert.ok(c.sendGrpcRequest(id, r.request()), "connection open");
  const end = await c.waitForStreamEnd(id);
  assert.equal(end.kind, "end", `stream ${id}: ${end.kind} (${c.describeClose()})`);
  assert.deepEqual(Buffer.concat(end.stream.data), grpcMessage(Buffer.from(WORKER)));
  assert.equal(headerValue(end.stream.headerBlocks.at(-1), "grpc-status"), "0");
}

/**
 * A request refused for its headers: RST_STREAM, a connection error, or an answer that is not a
 * success (HTTP 431 or a gRPC error status, trailers-only). `codes` are the acceptable error codes.
 */
function assertRefused(end: StreamEnd, codes: readonly number[], what: string): void {
  const expected = codes.map(errorName).join(", ");
  if (end.kind === "rst") {
    assert.ok(codes.includes(end.code), `${what}: RST_STREAM ${errorName(end.code)}, expected ${expected}`);
  } else if (end.kind === "connection") {
    const code = end.goaway?.errorCode;
    assert.ok(code === undefined || codes.includes(code), `${what}: GOAWAY ${errorName(code ?? 0)}`);
  } else {
    const last = end.stream.headerBlocks.at(-1);
    const status = headerValue(end.stream.headerBlocks[0], ":status");
    const grpcStatus = headerValue(last, "grpc-status");
    assert.ok(
      status === "431" || (grpcStatus !== undefined && grpcStatus !== "0"),
      `${what}: answered ${JSON.stringify(end.stream.headerBlocks)}`,
    );
  }
}

describe("grpc listener: defences", { timeout: 60_000 }, () => {
  it("rapid reset: 10,000 streams opened and reset in bulk stay bounded at the worker", () =>
    withRig(async (r) => {
      const fdsBefore = openFds();
      const c = await r.connect();
      const block = encodeHeaderBlock(r.request());
      const streams = 10_000;
      const parts: Buffer[] = [];
      for (let i = 0; i < streams; i++) {
        const id = 2 * i + 1;
        parts.push(headersFrame(id, block), rstStreamFrame(id, ERROR.CANCEL));
      }
      const bytes = Buffer.concat(parts);
      const rss = new RssGrowth();
      c.write(bytes);
      // Either the server ends the connection, or it has read everything once it answers a PING.
      await c.ping(undefined, 10_000).catch(() => undefined);
      let last = -1;
      await waitFor(
        () => {
          const settled = r.worker.streamCount === last;
          last = r.worker.streamCount;
          return settled;
        },
        10_000,
        "the worker's stream count to settle",
        200,
      );
      const growth = rss.stop();
      if (c.closed) await expectConnectionError(c, [...CALM, ERROR.PROTOCOL_ERROR]);
      else await assertServes(c, r);
      // Measured on node:http2 (Node 22, nghttp2 1.69): no stream reaches the worker (each is reset
      // before Fulcrum's upstream HEADERS leave), and nghttp2's reset-rate limit (a burst of 1,000)
      // ends the connection with GOAWAY INTERNAL_ERROR, last-stream-id 2001. A server that forwards
      // every HEADERS it parses and cancels it afterwards turns the attack into 10,000 upstream
      // streams; one that limits resets like nghttp2 stays near 1,000 at most: the bound is a tenth.
      assert.ok(r.worker.streamCount <= 1000, `${r.worker.streamCount} reset streams reached the worker`);
      await waitFor(() => r.workerActive() === 0, 5000, "every stream at the worker to close");
      // Measured: 9–18 MiB on node:http2 (mostly V8 heap for ~1,000 accepted streams); 64 MiB would
      // be ~6 KiB kept per attacking stream.
      assert.ok(growth < 64 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB`);
      await c.destroy();
      const fdsAfter = openFds();
      // Fulcrum's upstream session to the worker may stay open: two descriptors in this process.
      if (fdsBefore !== undefined && fdsAfter !== undefined)
        assert.ok(fdsAfter <= fdsBefore + 4, `file descriptors ${fdsBefore} → ${fdsAfter}`);
    }));

  it("CONTINUATION flood: endless CONTINUATION frames close the connection with bounded memory", () =>
    withRig(async (r) => {
      const c = await r.connect();
      const rss = new RssGrowth();
      // Each CONTINUATION carries one complete literal field of ~16 KB, never ending the block.
      const value = Buffer.alloc(16_000, "f");
      const field = Buffer.concat([Buffer.from([0]), hpackString("x-flood"), hpackString(value)]);
      c.write(headersFrame(1, encodeHeaderBlock(r.request()), { endHeaders: false }));
      const budget = 64 * MiB;
      const frames = await c.flood(
        continuationFrame(1, field, false),
        Math.ceil(budget / field.length),
        10_000,
      );
      await c.waitForClose(5000).catch(() => undefined);
      const growth = rss.stop();
      // §10.5.1: the field block must be decoded to keep HPACK state, unless the connection is closed;
      // closing it is the only bounded answer to a block that never ends. Measured on node:http2:
      // GOAWAY INTERNAL_ERROR after a few MB (nghttp2 limits CONTINUATION frames per block).
      assert.ok(c.closed, `connection still open after ${frames} CONTINUATION frames`);
      await expectConnectionError(c, [...CALM, ERROR.PROTOCOL_ERROR]);
      assert.ok(growth < 16 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB`);
      assert.equal(r.worker.streamCount, 0);
    }));

  it("HPACK bomb: one table entry referenced 12,000 times is refused with bounded memory", () =>
    withRig(async (r) => {
      const c = await r.connect();
      const rss = new RssGrowth();
      // ~16 KB on the wire, ~48 MB decoded: a 4,000-byte entry (index 62) and 12,000 one-byte references.
      const block = Buffer.concat([
        encodeHeaderBlock(r.request()),
        hpackLiteralIndexed("x-bomb", Buffer.alloc(4000, "b")),
        ...Array.from({ length: 12_000 }, () => hpackIndexed(62)),
      ]);
      assert.ok(block.length <= 16_384);
      c.write(headersFrame(1, block), dataFrame(1, grpcMessage(Buffer.alloc(0)), { endStream: true }));
      const end = await c.waitForStreamEnd(1);
      const growth = rss.stop();
      // Measured on node:http2: RST_STREAM ENHANCE_YOUR_CALM, about 3 MiB.
      assertRefused(end, HEADER_REFUSALS, "HPACK bomb");
      assert.ok(growth < 16 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB`);
      assert.equal(r.worker.streamCount, 0);
    }));

  it("a header list over max_header_list_size is refused; one under it is served", () =>
    withRig(async (r) => {
      const c = await r.connect();
      // docs/architecture.md: explicit header-size limits; RFC 9113 §6.5.2 makes advertising the limit advisory,
      // Fulcrum advertises it so that clients fail fast.
      assert.equal(c.serverSettings?.get(SETTING.MAX_HEADER_LIST_SIZE), 1024, "advertised limit");
      await assertServes(c, r);
      const small = c.newStreamId();
      c.sendGrpcRequest(small, r.request([["x-small", "s".repeat(400)]]));
      assert.equal((await c.waitForStreamEnd(small)).kind, "end");
      const big = c.newStreamId();
      c.sendGrpcRequest(big, r.request([["x-big", "b".repeat(2000)]]));
      const end = await c.waitForStreamEnd(big);
      // Measured on node:http2: RST_STREAM ENHANCE_YOUR_CALM.
      assertRefused(end, HEADER_REFUSALS, "header list over the limit");
      assert.equal(r.worker.streamCount, 2, "only the requests within the limit reached the worker");
    }, "max_header_list_size: 1KiB"));

  const floods: readonly [string, Buffer][] = [
    ["SETTINGS", settingsFrame([[SETTING.INITIAL_WINDOW_SIZE, 65_535]])],
    ["PING", pingFrame(Buffer.from("floodppp"))],
    ["WINDOW_UPDATE on stream 0", windowUpdateFrame(0, 1)],
  ];
  for (const [what, bytes] of floods) {
    it(`${what} flood: 100,000 frames without reading the answers → closed (ENHANCE_YOUR_CALM) or bounded memory`, () =>
      withRig(async (r) => {
        const c = await r.connect();
        const rss = new RssGrowth();
        // The client reads nothing while it floods, so every answer the server owes piles up there.
        c.socket.pause();
        const written = await c.flood(bytes, 100_000, 10_000);
        await sleep(300);
        const growth = rss.stop();
        c.socket.resume();
        await c.ping(undefined, 5000).catch(() => undefined);
        // Measured on node:http2: SETTINGS and PING floods end with GOAWAY INTERNAL_ERROR (nghttp2
        // caps queued ACKs at 1,000); WINDOW_UPDATE (no answer owed, increments of 1) is absorbed.
        if (c.closed) {
          await expectConnectionError(c, CALM);
        } else {
          assert.equal(written, 100_000);
          await assertServes(c, r);
        }
        assert.ok(growth < 16 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB`);
      }));
  }

  for (const [what, bytes] of [
    ["sends nothing", Buffer.alloc(0)],
    ["sends half the preface", Buffer.from("PRI * HTTP/2.0\r\n", "latin1")],
  ] as const) {
    it(`handshake_timeout: a connection that ${what} is closed within handshake_timeout + 1 s`, () =>
      withRig(async (r) => {
        const started = performance.now();
        const c = await r.connect({ preface: false });
        if (bytes.length > 0) c.write(bytes);
        await c.waitForClose(2000 + 500);
        const ms = performance.now() - started;
        assert.ok(ms >= 800, `closed after ${ms.toFixed(0)} ms, before handshake_timeout`);
        assert.ok(ms <= 2000, `closed after ${ms.toFixed(0)} ms`);
      }, "handshake_timeout: 1s"));
  }

  it("idle_timeout: a connection with no active stream is closed; an active stream keeps it open", () =>
    withRig(async (r) => {
      const c = await r.connect();
      // The worker answers after the body arrives: hold the body for 1.5 s, longer than idle_timeout.
      const id = c.newStreamId();
      c.write(headersFrame(id, encodeHeaderBlock(r.request())));
      await sleep(1500);
      assert.ok(!c.closed, "not closed while a stream is active");
      c.write(dataFrame(id, grpcMessage(Buffer.alloc(0)), { endStream: true }));
      const end = await c.waitForStreamEnd(id);
      assert.equal(end.kind, "end");
      const idleFrom = performance.now();
      await c.waitForClose(3000);
      const ms = performance.now() - idleFrom;
      assert.ok(ms >= 800 && ms <= 2000, `closed ${ms.toFixed(0)} ms after the last stream ended`);
      if (c.goaway) assert.equal(c.goaway.errorCode, ERROR.NO_ERROR);
    }, "idle_timeout: 1s"));

  it(
    "a half-closed client (FIN after its request) still gets the response",
    // node:http2 servers close a session when its socket ends unless created with
    // `allowHalfOpen: true`; the http2 engine's listener passes it.
    () =>
      withRig(async (r) => {
        const c = await r.connect();
        const id = c.newStreamId();
        c.sendGrpcRequest(id, r.request());
        c.socket.end();
        const end = await c.waitForStreamEnd(id);
        assert.equal(end.kind, "end", c.describeClose());
        assert.deepEqual(Buffer.concat(end.stream.data), grpcMessage(Buffer.from(WORKER)));
        assert.equal(headerValue(end.stream.headerBlocks.at(-1), "grpc-status"), "0");
      }),
  );
});
