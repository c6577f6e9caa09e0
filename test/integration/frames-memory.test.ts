/**
 * The `frames` engine moves large messages without holding them: Fulcrum runs as its own process
 * (the CLI) and its peak RSS (VmHWM from /proc) is read before and after. A 256 MiB unary request
 * arrives intact with the peak growing < 48 MiB; a 128 MiB response to a client reading at 8 MiB/s
 * arrives intact with the peak growing < 32 MiB (flow control holds the worker back instead of
 * Fulcrum buffering what the client has not read). Raw node:http2 on both sides, so only Fulcrum
 * sits between the bytes and the hash.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { startCli, type CliProcess } from "../helpers/cli-process.js";

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;

/** Peak resident set of `pid` in bytes (VmHWM). */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error("no VmHWM");
  return Number(m[1]) * 1024;
}

/** Deterministic bytes: chunk `i` filled from its index, so both ends can hash without storing. */
function chunkOf(i: number): Buffer {
  const b = Buffer.allocUnsafe(CHUNK);
  for (let o = 0; o < CHUNK; o += 4) b.writeUInt32BE((i * CHUNK + o) >>> 0, o);
  return b;
}

/** A protobuf varint. */
function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Buffer.from(out);
}

function grpcPrefix(length: number): Buffer {
  const p = Buffer.alloc(5);
  p.writeUInt32BE(length, 1);
  return p;
}

/**
 * A worker on raw node:http2: `/big.Test/Upload` hashes the request body and answers the hex digest;
 * `/big.Test/Download` answers one gRPC message of the size named in the request (chunks as above).
 */
function startWorker(): Promise<{ server: http2.Http2Server; port: number }> {
  const server = http2.createServer({ settings: { initialWindowSize: 4 * MiB } });
  server.on("stream", (stream, headers) => {
    const path = headers[":path"];
    if (path === "/big.Test/Upload" || path === "/inference.GRPCInferenceService/ModelInfer") {
      const hash = createHash("sha256");
      stream.on("data", (c: Buffer) => hash.update(c));
      stream.on("end", () => {
        const digest = Buffer.from(hash.digest("hex"));
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(Buffer.concat([grpcPrefix(digest.length), digest]));
      });
      return;
    }
    const body: Buffer[] = [];
    stream.on("data", (c: Buffer) => body.push(c));
    stream.on("end", () => {
      const size = Number(Buffer.concat(body).subarray(5).toString());
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.write(grpcPrefix(size));
      let i = 0;
      const pump = (): void => {
        while (i * CHUNK < size) {
          const ok = stream.write(chunkOf(i++));
          if (!ok) return void stream.once("drain", pump);
        }
        stream.end();
      };
      pump();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ server, port: (server.address() as { port: number }).port }),
    ),
  );
}

function request(session: http2.ClientHttp2Session, path: string): http2.ClientHttp2Stream {
  return session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
  });
}

describe("frames engine memory", { timeout: 120_000 }, () => {
  let worker: { server: http2.Http2Server; port: number };
  let fulcrum: CliProcess;
  let session: http2.ClientHttp2Session;
  let warmPeak = 0;

  before(async () => {
    worker = await startWorker();
  });

  // A fresh Fulcrum per test: VmHWM is a peak, so one test's growth must not hide in another's.
  beforeEach(async () => {
    const dir = mkdtempSync(join(tmpdir(), "fulcrum-frames-memory-"));
    const file = join(dir, "fulcrum.yaml");
    writeFileSync(
      file,
      `log: { level: warn }
listeners:
  - { name: g, protocol: grpc, engine: frames, listen: "127.0.0.1:0", cluster: w }
  - { name: m, protocol: grpc, engine: frames, listen: "127.0.0.1:0", cluster: models }
clusters:
  - name: w
    health_check: { type: none }
    endpoints: [{ address: "127.0.0.1:${worker.port}" }]
  - name: models
    health_check: { type: none }
    models: [{ name: resnet }]
    explain: true
    endpoints: [{ address: "127.0.0.1:${worker.port}" }]
`,
    );
    fulcrum = await startCli(["run", "--config", file, "--log-level", "info"], 2);
    session = http2.connect(`http://${fulcrum.address("g")}`, { settings: { initialWindowSize: 4 * MiB } });
    session.once("connect", () => session.setLocalWindowSize(32 * MiB));
    // Warm-up: code paths, pools and buffers exist before the baseline is taken, and so does the
    // young generation: Fulcrum runs with fixed 8 MiB semi-spaces (NODE_FLAGS), whose pages are
    // first touched as calls allocate, so 300 small calls go through first.
    const download = async (bytes: number): Promise<void> => {
      const warm = request(session, "/big.Test/Download");
      warm.end(Buffer.concat([grpcPrefix(7), Buffer.from(String(bytes).padStart(7, "0"))]));
      warm.resume();
      await new Promise((r) => warm.once("close", r));
    };
    await download(4 * MiB);
    for (let round = 0; round < 300; round++) {
      await download(16);
    }
    warmPeak = peakRss(fulcrum.child.pid as number);
  });

  afterEach(async () => {
    session?.close();
    fulcrum?.child.kill("SIGKILL");
    await fulcrum?.exited();
  });

  after(async () => {
    await new Promise((r) => worker?.server.close(r));
  });

  it("a 256 MiB unary request arrives intact; Fulcrum's peak RSS grows < 48 MiB", async () => {
    const pid = fulcrum.child.pid as number;
    const size = 256 * MiB;
    const expected = createHash("sha256");
    const stream = request(session, "/big.Test/Upload");
    const response: Buffer[] = [];
    stream.on("data", (c: Buffer) => response.push(c));
    const trailers = new Promise<http2.IncomingHttpHeaders>((r) => stream.once("trailers", r));
    const prefix = grpcPrefix(size);
    expected.update(prefix);
    stream.write(prefix);
    for (let i = 0; i * CHUNK < size; i++) {
      const c = chunkOf(i);
      expected.update(c);
      if (!stream.write(c)) await new Promise((r) => stream.once("drain", r));
    }
    stream.end();
    assert.equal((await trailers)["grpc-status"], "0");
    await new Promise((r) => stream.once("close", r));
    const digest = Buffer.concat(response).subarray(5).toString();
    assert.equal(digest, expected.digest("hex"), "the worker hashed exactly what the client sent");
    const growth = peakRss(pid) - warmPeak;
    console.log(`frames 256 MiB unary: Fulcrum VmHWM grew ${(growth / MiB).toFixed(1)} MiB`);
    assert.ok(growth < 48 * MiB, `VmHWM grew ${(growth / MiB).toFixed(1)} MiB`);
  });

  it("a 128 MiB response to a client reading at 8 MiB/s arrives intact; peak RSS grows < 32 MiB", async () => {
    const pid = fulcrum.child.pid as number;
    const size = 128 * MiB;
    const stream = request(session, "/big.Test/Download");
    const sizeText = Buffer.from(String(size));
    stream.end(Buffer.concat([grpcPrefix(sizeText.length), sizeText]));
    const hash = createHash("sha256");
    const expected = createHash("sha256");
    expected.update(grpcPrefix(size));
    for (let i = 0; i * CHUNK < size; i++) expected.update(chunkOf(i));
    let received = 0;
    const started = performance.now();
    stream.on("data", (c: Buffer) => {
      hash.update(c);
      received += c.length;
      // Read at 8 MiB/s: pause until the clock catches up with what was read.
      const dueMs = (received / (8 * MiB)) * 1000 - (performance.now() - started);
      if (dueMs > 20) {
        stream.pause();
        setTimeout(() => stream.resume(), dueMs);
      }
    });
    const trailers = await new Promise<http2.IncomingHttpHeaders>((r) => stream.once("trailers", r));
    await new Promise((r) => stream.once("close", r));
    assert.equal(trailers["grpc-status"], "0");
    assert.equal(received, size + 5);
    assert.equal(hash.digest("hex"), expected.digest("hex"));
    const growth = peakRss(pid) - warmPeak;
    console.log(`frames 128 MiB slow reader: Fulcrum VmHWM grew ${(growth / MiB).toFixed(1)} MiB`);
    assert.ok(growth < 32 * MiB, `VmHWM grew ${(growth / MiB).toFixed(1)} MiB`);
  });

  it("a 256 MiB ModelInfer routed by its model name: the head is peeked, the rest streams; peak RSS grows < 48 MiB", async () => {
    const pid = fulcrum.child.pid as number;
    const models = http2.connect(`http://${fulcrum.address("m")}`, {
      settings: { initialWindowSize: 4 * MiB },
    });
    try {
      const tensor = 256 * MiB;
      // ModelInferRequest: model_name = 1 ("resnet"), raw_input_contents = 7 (the tensor bytes).
      const head = Buffer.concat([
        Buffer.from([0x0a, 6]),
        Buffer.from("resnet"),
        Buffer.from([0x3a]),
        varint(tensor),
      ]);
      const prefix = grpcPrefix(head.length + tensor);
      const expected = createHash("sha256").update(prefix).update(head);
      const stream = request(models, "/inference.GRPCInferenceService/ModelInfer");
      const response: Buffer[] = [];
      stream.on("data", (c: Buffer) => response.push(c));
      const trailers = new Promise<http2.IncomingHttpHeaders>((r) => stream.once("trailers", r));
      stream.write(Buffer.concat([prefix, head]));
      for (let i = 0; i * CHUNK < tensor; i++) {
        const c = chunkOf(i);
        expected.update(c);
        if (!stream.write(c)) await new Promise((r) => stream.once("drain", r));
      }
      stream.end();
      const t = await trailers;
      await new Promise((r) => stream.once("close", r));
      assert.equal(t["grpc-status"], "0");
      assert.match(String(t["fulcrum-route"]), /reason=model$/, "routed by its model");
      assert.equal(Buffer.concat(response).subarray(5).toString(), expected.digest("hex"));
      const growth = peakRss(pid) - warmPeak;
      console.log(`frames 256 MiB ModelInfer: Fulcrum VmHWM grew ${(growth / MiB).toFixed(1)} MiB`);
      assert.ok(growth < 48 * MiB, `VmHWM grew ${(growth / MiB).toFixed(1)} MiB`);
    } finally {
      models.close();
    }
  });
});
