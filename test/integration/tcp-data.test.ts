/**
 * Bytes through the TCP proxy: 256 MiB each way arrive byte-identical, and a reply the worker sends
 * after the client's FIN (half-close) still reaches the client.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, describe, it } from "node:test";
import { startFulcrum, type StartedFulcrum } from "../helpers/harness.js";

const CHUNK = 1 << 20;
const CHUNKS = 256;

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)),
  );
}

function proxyConfig(port: number): string {
  return `
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:0", cluster: one }
clusters:
  - name: one
    health_check: { type: none }
    endpoints:
      - address: 127.0.0.1:${port}
`;
}

/** Writes CHUNKS random chunks with backpressure, hashing them; resolves with the hex digest. */
async function sendRandom(socket: Socket): Promise<string> {
  const hash = createHash("sha256");
  for (let i = 0; i < CHUNKS; i++) {
    const chunk = randomBytes(CHUNK);
    hash.update(chunk);
    if (!socket.write(chunk)) await new Promise((r) => socket.once("drain", r));
  }
  socket.end();
  return hash.digest("hex");
}

function receiveAll(socket: Socket): Promise<{ digest: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    let bytes = 0;
    socket.on("data", (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
    });
    socket.once("end", () => resolve({ digest: hash.digest("hex"), bytes }));
    socket.once("error", reject);
  });
}

describe("tcp data path", { timeout: 120_000 }, () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  async function start(onConnection: (s: Socket) => void): Promise<StartedFulcrum> {
    const server = createServer({ allowHalfOpen: true }, onConnection);
    const port = await listen(server);
    cleanups.push(() => new Promise((r) => server.close(() => r())));
    const f = await startFulcrum(proxyConfig(port));
    cleanups.push(() => f.fulcrum.stop(0));
    return f;
  }

  it("256 MiB each way arrive byte-identical", async () => {
    let workerResult: Promise<{ digest: string; bytes: number }> | undefined;
    let workerSent: Promise<string> | undefined;
    const f = await start((s) => {
      workerResult = receiveAll(s);
      workerSent = sendRandom(s);
    });
    const client = connect({ host: "127.0.0.1", port: f.target().port, allowHalfOpen: true });
    await new Promise((r) => client.once("connect", r));
    const received = receiveAll(client);
    const sent = await sendRandom(client);
    const got = await received;
    assert.ok(workerResult && workerSent);
    const atWorker = await workerResult;
    assert.equal(atWorker.bytes, CHUNK * CHUNKS);
    assert.equal(atWorker.digest, sent, "client → worker bytes differ");
    assert.equal(got.bytes, CHUNK * CHUNKS);
    assert.equal(got.digest, await workerSent, "worker → client bytes differ");
    client.destroy();
  });

  it("a reply sent after the client's FIN arrives", async () => {
    const f = await start((s) => {
      let got = "";
      s.on("data", (c: Buffer) => (got += c.toString()));
      s.once("end", () => {
        setTimeout(() => s.end(`late reply to ${got}`), 50);
      });
    });
    const client = connect({ host: "127.0.0.1", port: f.target().port, allowHalfOpen: true });
    client.end("hello");
    let reply = "";
    client.on("data", (c: Buffer) => (reply += c.toString()));
    await new Promise((r) => client.once("end", r));
    assert.equal(reply, "late reply to hello");
    client.destroy();
  });
});
