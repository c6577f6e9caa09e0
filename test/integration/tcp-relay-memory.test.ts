/**
 * Regression, found by the saturated soak: small upstream replies were copied out of the relay's
 * landing buffer into slices of Node's shared 8 KiB Buffer pool. A slice carried into the old
 * generation keeps its whole slab until the next full GC, so external memory grew by about the
 * payload of every short connection between full collections (1 KiB per connection at 270/s), and
 * once a collection came late glibc kept the 16 MiB it had grown to: RSS stepped up for good. Now a
 * reply written through at once is written from the landing buffer itself (nothing allocated), and
 * one that has to wait gets memory of its own, never a pool slice.
 *
 * Real sockets on loopback; the one thing observed from inside is the chunk the relay hands to the
 * client socket's `write`.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, describe, it } from "node:test";
import { TcpRelay } from "../../src/tcp/tcp-relay.js";
import { listen } from "../reliability/helpers/tcp-peers.js";

interface Written {
  readonly chunk: Buffer;
  /** The chunk spans an ArrayBuffer of its own (not a slice of a shared one). */
  readonly own: boolean;
  /** The client socket had nothing queued after the write: the kernel took it at once. */
  readonly through: boolean;
}

/**
 * A front server relaying every accepted connection to `upstreamPort` through a TcpRelay, recording
 * what the relay hands to each client socket's `write`.
 */
async function startFront(
  servers: Server[],
  upstreamPort: number,
): Promise<{ port: number; written: Written[]; released: Promise<void>[] }> {
  const written: Written[] = [];
  const released: Promise<void>[] = [];
  const front = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client: Socket) => {
    const write = client.write.bind(client) as (chunk: Buffer, cb?: () => void) => boolean;
    client.write = ((chunk: Buffer, cb?: () => void) => {
      const own = chunk.byteOffset === 0 && chunk.buffer.byteLength === chunk.length;
      const more = write(chunk, cb);
      written.push({ chunk, own, through: client.writableLength === 0 });
      return more;
    }) as Socket["write"];
    const relay = new TcpRelay(client);
    const upstream = connect({ host: "127.0.0.1", port: upstreamPort, onread: relay.onread });
    released.push(
      new Promise((done) =>
        upstream.once("connect", () => relay.start(upstream, { released: done, failed: () => {} })),
      ),
    );
  });
  servers.push(front);
  return { port: await listen(front), written, released };
}

describe("tcp relay memory", { timeout: 30_000 }, () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });

  it("small upstream replies take no memory of their own once written (pool slabs held RSS)", async () => {
    const echo = createServer((s) => s.pipe(s));
    servers.push(echo);
    const echoPort = await listen(echo);

    const { port: frontPort, written, released } = await startFront(servers, echoPort);

    const CONNECTIONS = 20;
    const PAYLOAD = Buffer.alloc(1024, 7);
    for (let i = 0; i < CONNECTIONS; i++) {
      const c = connect({ host: "127.0.0.1", port: frontPort });
      let got = 0;
      await new Promise<void>((done, fail) => {
        c.on("data", (d: Buffer) => {
          got += d.length;
          if (got === PAYLOAD.length) c.end();
        });
        c.once("close", () => done());
        c.once("error", fail);
        c.write(PAYLOAD);
      });
      assert.equal(got, PAYLOAD.length, `connection ${i}: the echo came back whole`);
    }
    await Promise.all(released);

    assert.ok(written.length >= CONNECTIONS, `${written.length} writes to clients`);
    const through = written.filter((w) => w.through);
    assert.ok(through.length > 0, "some replies were written through at once");
    assert.equal(
      new Set(through.map((w) => w.chunk.buffer)).size,
      1,
      "every reply written through came from the one landing buffer: no memory per reply",
    );
    written.forEach((w, i) => {
      if (w.through) return;
      // A reply that waits has memory of its own, or keeps a landing buffer no later read uses.
      const reused = written.slice(i + 1).some((later) => later.chunk.buffer === w.chunk.buffer);
      assert.ok(w.own || !reused, "a reply that waits holds memory that later reads land in");
    });
  });

  it("small replies to a client that stops reading wait without corruption and arrive whole", async () => {
    // The worker sends 4,000 messages of 3 KiB (below the bulk threshold), one per event-loop turn, to
    // a client that reads nothing for a while: the client's kernel buffers fill, so the relay's writes
    // go from written-through to partial to queued. Every byte must arrive, in order.
    const MESSAGES = 4000;
    const SIZE = 3 * 1024;
    const sent = createHash("sha256");
    const worker = createServer((s) => {
      let i = 0;
      const next = (): void => {
        if (i === MESSAGES) {
          s.end();
          return;
        }
        const m = Buffer.alloc(SIZE, i % 251);
        m.writeUInt32BE(i++, 0);
        sent.update(m);
        if (s.write(m)) setImmediate(next);
        else s.once("drain", next);
      };
      next();
    });
    servers.push(worker);
    const { port, written } = await startFront(servers, await listen(worker));

    const c = connect({ host: "127.0.0.1", port });
    c.pause();
    await new Promise((r) => setTimeout(r, 1500));
    const got = createHash("sha256");
    let bytes = 0;
    await new Promise<void>((done, fail) => {
      c.on("data", (d: Buffer) => {
        got.update(d);
        bytes += d.length;
      });
      c.once("end", () => done());
      c.once("error", fail);
      c.resume();
    });
    c.destroy();
    assert.equal(bytes, MESSAGES * SIZE);
    assert.equal(got.digest("hex"), sent.digest("hex"), "the bytes arrived unchanged and in order");
    assert.ok(
      written.some((w) => !w.through),
      `some writes had to wait (${written.length} writes, all written through: the test lost its point)`,
    );
  });
});
