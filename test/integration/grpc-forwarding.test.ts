/**
 * Faithful forwarding through gRPC mode: every streaming kind with 10,000 messages complete and in
 * order, 64 MiB messages both ways, metadata (`-bin` included), custom trailers, statuses with unicode
 * messages, the worker's own UNIMPLEMENTED, trailers-only responses kept trailers-only, and
 * docs/architecture.md's "no upstream trailers → status 13".
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http2";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
  Teardown,
  UNLIMITED_MESSAGES,
  echoClient,
  metadataOf,
  unary,
  type Outcome,
} from "../helpers/grpc-client.js";
import {
  RawHttp2Worker,
  closeSession,
  grpcFrame,
  parseGrpcFrames,
  rawConnect,
  rawGrpcRequest,
  readBody,
  respondGrpc,
  respondTrailersOnly,
} from "../helpers/grpc-raw.js";
import { grpcConfig } from "../helpers/grpc-client.js";
import {
  ECHO,
  META_TRAILERS,
  startGrpcWorkers,
  streamMessage,
  type GrpcTestWorker,
} from "../helpers/grpc-test-worker.js";
import { startFulcrum, type StartedFulcrum } from "../helpers/harness.js";

const identity = (b: Buffer): Buffer => b;
const COUNT = 10_000;

function closeWorkers(workers: readonly GrpcTestWorker[]): Promise<unknown> {
  return Promise.all(workers.map((w) => w.close()));
}

/** One grpc-js worker with unlimited message sizes and Fulcrum in front of it. */
async function fulcrumWithWorker(own: Teardown): Promise<{ f: StartedFulcrum; worker: GrpcTestWorker }> {
  const [worker] = own.add(await startGrpcWorkers(["a"], { maxMessageBytes: -1 }), closeWorkers);
  assert.ok(worker);
  const f = own.add(await startFulcrum(grpcConfig({ endpoints: [worker.address] })), (x) =>
    x.fulcrum.stop(0),
  );
  return { f, worker };
}

/** A stream's messages checked against `streamMessage(i, size)` as they arrive. */
function collectStream(
  call: grpc.ClientReadableStream<Buffer> | grpc.ClientDuplexStream<Buffer, Buffer>,
  size: number,
): Promise<{ count: number; firstMismatch: number; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    let count = 0;
    let firstMismatch = -1;
    call.on("data", (m: Buffer) => {
      if (firstMismatch < 0 && !m.equals(streamMessage(count, size))) firstMismatch = count;
      count++;
    });
    call.on("error", () => {});
    call.on("status", (status: grpc.StatusObject) => resolve({ count, firstMismatch, status }));
  });
}

/** Metadata as plain values (first value per key), for deepEqual. */
function plain(
  md: grpc.Metadata | undefined,
  keys: readonly string[],
): Record<string, string | Buffer | undefined> {
  const map = md?.getMap() ?? {};
  return Object.fromEntries(keys.map((k) => [k, map[k]]));
}

describe("grpc forwarding", { timeout: 60_000 }, () => {
  it(`server stream of ${COUNT} messages arrives complete and in order`, async () => {
    const own = new Teardown();
    try {
      const { f } = await fulcrumWithWorker(own);
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const call = client.makeServerStreamRequest(
        ECHO.serverStream,
        identity,
        identity,
        Buffer.from(JSON.stringify({ count: COUNT, size: 64 })),
        new grpc.Metadata(),
        { deadline: Date.now() + 30_000 },
      );
      const r = await collectStream(call, 64);
      assert.equal(r.status.code, grpc.status.OK, r.status.details);
      assert.equal(r.count, COUNT);
      assert.equal(r.firstMismatch, -1, `message ${r.firstMismatch} out of order or altered`);
    } finally {
      await own.run();
    }
  });

  it(`bidi stream of ${COUNT} messages each way arrives complete and in order`, async () => {
    const own = new Teardown();
    try {
      const { f, worker } = await fulcrumWithWorker(own);
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const call = client.makeBidiStreamRequest(ECHO.bidi, identity, identity, new grpc.Metadata(), {
        deadline: Date.now() + 30_000,
      });
      const done = collectStream(call, 100);
      for (let i = 0; i < COUNT; i++) call.write(streamMessage(i, 100));
      call.end();
      const r = await done;
      assert.equal(r.status.code, grpc.status.OK, r.status.details);
      assert.equal(r.count, COUNT);
      assert.equal(r.firstMismatch, -1, `message ${r.firstMismatch} out of order or altered`);
      assert.equal(worker.calls, 1);
    } finally {
      await own.run();
    }
  });

  it(`client stream of ${COUNT} messages arrives complete and in order`, async () => {
    const own = new Teardown();
    try {
      const { f } = await fulcrumWithWorker(own);
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const hash = createHash("sha256");
      const answer = await new Promise<Outcome>((resolve) => {
        const call = client.makeClientStreamRequest(
          ECHO.clientStream,
          identity,
          identity,
          new grpc.Metadata(),
          { deadline: Date.now() + 30_000 },
          (err, value) =>
            resolve(
              err
                ? { ok: false, code: err.code, details: err.details, metadata: err.metadata, ms: 0 }
                : { ok: true, value: value ?? Buffer.alloc(0), ms: 0 },
            ),
        );
        for (let i = 0; i < COUNT; i++) {
          const m = streamMessage(i, 50);
          hash.update(m);
          call.write(m);
        }
        call.end();
      });
      assert.ok(answer.ok, JSON.stringify(answer));
      assert.deepEqual(JSON.parse(answer.value.toString("utf8")), {
        count: COUNT,
        inOrder: true,
        sha256: hash.digest("hex"),
      });
    } finally {
      await own.run();
    }
  });

  it("a 64 MiB request and a 64 MiB response arrive intact", async () => {
    const own = new Teardown();
    try {
      const { f, worker } = await fulcrumWithWorker(own);
      const client = own.add(echoClient(f.target("g"), { channelOptions: UNLIMITED_MESSAGES }), (c) =>
        c.close(),
      );
      const big = Buffer.alloc(64 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 4) big.writeUInt32BE(i, i);
      const o = await unary(client, ECHO.echo, big, { deadlineMs: 40_000 });
      assert.ok(o.ok, JSON.stringify(o.ok ? "" : { code: o.code, details: o.details }));
      assert.equal(o.value.length, big.length);
      assert.ok(o.value.equals(big), "64 MiB echoed byte for byte");
      assert.equal(worker.calls, 1);
    } finally {
      await own.run();
    }
  });

  for (const failing of [false, true]) {
    it(`metadata, -bin metadata and custom trailers arrive unchanged (${failing ? "error status with a unicode message" : "OK"})`, async () => {
      const own = new Teardown();
      try {
        const { f, worker } = await fulcrumWithWorker(own);
        const client = own.add(echoClient(f.target("g")), (c) => c.close());
        const binary = Buffer.from([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff]);
        const message = "résumé — 失敗 ✓ 100% \u{1F680}";
        const request = failing ? { code: grpc.status.FAILED_PRECONDITION, message } : {};
        const result = await new Promise<{ headers?: grpc.Metadata; status: grpc.StatusObject }>(
          (resolve) => {
            let headers: grpc.Metadata | undefined;
            const call = client.makeUnaryRequest(
              ECHO.meta,
              identity,
              identity,
              Buffer.from(JSON.stringify(request)),
              metadataOf({ "x-custom": "hello world", "x-data-bin": binary }),
              { deadline: Date.now() + 10_000 },
              () => {},
            );
            call.on("metadata", (md: grpc.Metadata) => (headers = md));
            call.on("status", (status: grpc.StatusObject) => resolve({ headers, status }));
          },
        );
        // Request metadata as the worker saw it.
        assert.deepEqual(plain(worker.lastMetadata, ["x-custom", "x-data-bin"]), {
          "x-custom": "hello world",
          "x-data-bin": binary,
        });
        // Response headers (the worker echoes the request's x- metadata).
        assert.deepEqual(plain(result.headers, ["x-custom", "x-data-bin"]), {
          "x-custom": "hello world",
          "x-data-bin": binary,
        });
        assert.equal(result.status.code, failing ? grpc.status.FAILED_PRECONDITION : grpc.status.OK);
        if (failing) assert.equal(result.status.details, message);
        assert.deepEqual(plain(result.status.metadata, Object.keys(META_TRAILERS)), META_TRAILERS);
      } finally {
        await own.run();
      }
    });
  }

  it("an unknown method returns the worker's own UNIMPLEMENTED", async () => {
    const own = new Teardown();
    try {
      const { f, worker } = await fulcrumWithWorker(own);
      const viaFulcrum = own.add(echoClient(f.target("g")), (c) => c.close());
      const direct = own.add(echoClient(worker.address), (c) => c.close());
      const through = await unary(viaFulcrum, "/test.Echo/NoSuchMethod");
      const expected = await unary(direct, "/test.Echo/NoSuchMethod");
      assert.ok(!expected.ok && expected.code === grpc.status.UNIMPLEMENTED);
      assert.ok(!through.ok, "the call fails");
      assert.deepEqual(
        { code: through.code, details: through.details },
        { code: expected.code, details: expected.details },
      );
    } finally {
      await own.run();
    }
  });

  it("a trailers-only upstream response is forwarded as trailers-only", async () => {
    const own = new Teardown();
    try {
      const message = "not here ✓";
      const worker = own.add(
        new RawHttp2Worker((stream) => {
          void readBody(stream).then(() =>
            respondTrailersOnly(stream, grpc.status.NOT_FOUND, message, { "x-why": "because" }),
          );
        }),
        (w) => w.close(),
      );
      await worker.listen();
      const [grpcWorker] = own.add(await startGrpcWorkers(["g"]), closeWorkers);
      assert.ok(grpcWorker);
      grpcWorker.failWith = { code: grpc.status.UNAVAILABLE, details: "grpc-js failing" };

      for (const upstream of [worker.address, grpcWorker.address]) {
        const [host, port] = upstream.split(":") as [string, string];
        // The premise: the worker itself answers trailers-only.
        const directSession = await rawConnect({ host, port: Number(port) });
        const direct = await rawGrpcRequest(directSession, ECHO.unary);
        await closeSession(directSession);
        assert.equal(direct.trailersOnly, true, `${upstream} answers trailers-only`);

        const f = await startFulcrum(grpcConfig({ endpoints: [upstream] }));
        try {
          const session = await rawConnect(f.target("g"));
          try {
            const r = await rawGrpcRequest(session, ECHO.unary);
            assert.equal(r.trailersOnly, true, "response HEADERS carry END_STREAM");
            assert.equal(r.dataEvents, 0, "no DATA");
            assert.equal(r.trailers, undefined, "no separate trailers");
            assert.equal(r.grpcStatus, direct.grpcStatus);
            assert.equal(r.grpcMessage, direct.grpcMessage);
            assert.equal(r.headers["x-why"], direct.headers["x-why"]);
          } finally {
            await closeSession(session);
          }
        } finally {
          await f.fulcrum.stop(0);
        }
      }
    } finally {
      await own.run();
    }
  });

  it("request headers and metadata reach the worker; response headers and trailers come back", async () => {
    const own = new Teardown();
    try {
      let seen: IncomingHttpHeaders | undefined;
      let seenBody: Buffer | undefined;
      const worker = own.add(
        new RawHttp2Worker((stream, headers) => {
          seen = headers;
          void readBody(stream).then((body) => {
            seenBody = body;
            respondGrpc(stream, Buffer.from("pong"), {
              headers: { "x-resp": "r1", "x-resp-bin": Buffer.from([0, 255]).toString("base64") },
              trailers: { "x-trail": "t1", "grpc-message": "all%20good" },
            });
          });
        }),
        (w) => w.close(),
      );
      await worker.listen();
      const f = own.add(await startFulcrum(grpcConfig({ endpoints: [worker.address] })), (x) =>
        x.fulcrum.stop(0),
      );
      const session = own.add(await rawConnect(f.target("g")), closeSession);
      const bin = Buffer.from([1, 2, 3, 250]).toString("base64");
      const r = await rawGrpcRequest(session, "/test.Echo/Raw", [Buffer.from("ping")], {
        headers: {
          "grpc-timeout": "5S",
          "grpc-encoding": "identity",
          "grpc-accept-encoding": "identity",
          "x-custom": "c1",
          "x-data-bin": bin,
        },
      });
      assert.ok(seen);
      assert.equal(seen[":method"], "POST");
      assert.equal(seen[":path"], "/test.Echo/Raw");
      assert.equal(seen["content-type"], "application/grpc");
      assert.equal(seen.te, "trailers");
      assert.equal(seen["grpc-encoding"], "identity");
      assert.equal(seen["grpc-accept-encoding"], "identity");
      assert.equal(seen["x-custom"], "c1");
      assert.equal(seen["x-data-bin"], bin);
      const timeoutMs = grpcTimeoutMs(seen["grpc-timeout"]);
      assert.ok(
        timeoutMs > 4000 && timeoutMs <= 5000,
        `grpc-timeout forwarded: ${String(seen["grpc-timeout"])}`,
      );
      assert.deepEqual(seenBody && parseGrpcFrames(seenBody), [Buffer.from("ping")]);

      assert.equal(r.headers[":status"], 200);
      assert.equal(r.headers["x-resp"], "r1");
      assert.equal(r.headers["x-resp-bin"], Buffer.from([0, 255]).toString("base64"));
      assert.deepEqual(parseGrpcFrames(r.body), [Buffer.from("pong")]);
      assert.equal(r.grpcStatus, "0");
      assert.equal(r.grpcMessage, "all good");
      assert.equal(r.trailers?.["x-trail"], "t1");
    } finally {
      await own.run();
    }
  });

  it("an upstream response that ends without trailers becomes status 13", async () => {
    const own = new Teardown();
    try {
      const worker = own.add(
        new RawHttp2Worker((stream) => {
          void readBody(stream).then(() => {
            if (stream.closed) return;
            stream.respond({ ":status": 200, "content-type": "application/grpc" });
            stream.end(grpcFrame(Buffer.from("no trailers follow")));
          });
        }),
        (w) => w.close(),
      );
      await worker.listen();
      const f = own.add(await startFulcrum(grpcConfig({ endpoints: [worker.address] })), (x) =>
        x.fulcrum.stop(0),
      );
      const session = own.add(await rawConnect(f.target("g")), closeSession);
      const r = await rawGrpcRequest(session, ECHO.unary);
      assert.equal(r.grpcStatus, String(grpc.status.INTERNAL), JSON.stringify(r.trailers ?? r.headers));
    } finally {
      await own.run();
    }
  });
});

/** A `grpc-timeout` header value in ms (gRPC's PROTOCOL-HTTP2.md: digits then H M S m u n). */
function grpcTimeoutMs(value: unknown): number {
  const m = /^(\d{1,8})([HMSmun])$/.exec(String(value));
  if (!m) return NaN;
  const unitMs: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };
  return Number(m[1]) * (unitMs[m[2] as string] as number);
}
