/**
 * How the relay passes FINs on. Once both peers have sent their FIN and nothing is left to write,
 * it closes both sockets at once (the FIN then follows the bytes in the kernel) instead of shutting
 * each down first; these tests hold what that must not lose: bytes still queued in the relay go out
 * before the FIN, a FIN that comes alone is passed on at once (half-close), and every socket of a
 * request/response exchange closes, whichever peer finishes first.
 *
 * Real sockets on loopback; from inside, the test only corks the relay's client socket, so that
 * bytes are queued in it when the FINs come in.
 */
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, describe, it } from "node:test";
import { TcpRelay } from "../../src/tcp/tcp-relay.js";
import { listen } from "../reliability/helpers/tcp-peers.js";

/** A front relaying every accepted connection to `upstreamPort`; `prepare` sees each client socket. */
async function startFront(
  servers: Server[],
  upstreamPort: number,
  prepare: (client: Socket) => void = () => {},
): Promise<{ port: number; released: Promise<void>[] }> {
  const released: Promise<void>[] = [];
  const front = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client: Socket) => {
    prepare(client);
    const relay = new TcpRelay(client);
    const upstream = connect({
      host: "127.0.0.1",
      port: upstreamPort,
      allowHalfOpen: true,
      onread: relay.onread,
    });
    released.push(
      new Promise((done) =>
        upstream.once("connect", () => relay.start(upstream, { released: done, failed: () => {} })),
      ),
    );
  });
  servers.push(front);
  return { port: await listen(front), released };
}

/** Everything `socket` receives up to its FIN, as text; rejects on a reset. */
function readToEnd(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    socket.setEncoding("utf8");
    socket.on("data", (c: string) => (got += c));
    socket.once("end", () => resolve(got));
    socket.once("error", reject);
  });
}

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.once("close", () => resolve()));
}

describe("tcp relay FINs", { timeout: 30_000 }, () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });

  it("both FINs in while the reply is queued in the relay: the reply goes out, then the FIN", async () => {
    // Below the client socket's high-water mark, so the relay keeps reading and sees the worker's FIN.
    const reply = "x".repeat(4000);
    const atWorker: Promise<string>[] = [];
    const worker = createServer({ allowHalfOpen: true }, (s) => {
      atWorker.push(readToEnd(s));
      s.end(reply);
    });
    servers.push(worker);
    // Corked, the client socket keeps every write queued until the relay ends it.
    const { port, released } = await startFront(servers, await listen(worker), (client) => client.cork());

    const client = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    const got = readToEnd(client);
    client.end("request");
    assert.equal(await got, reply);
    assert.equal(await atWorker[0], "request");
    await Promise.all(released);
    client.destroy();
  });

  it("a FIN that comes alone is passed on at once, and the other direction keeps flowing", async () => {
    let accept!: (s: Socket) => void;
    const accepted = new Promise<Socket>((r) => (accept = r));
    const worker = createServer({ allowHalfOpen: true }, (s) => accept(s));
    servers.push(worker);
    const { port } = await startFront(servers, await listen(worker));

    const client = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    const got = readToEnd(client);
    client.end("question");
    const w = await accepted;
    assert.equal(await readToEnd(w), "question", "the client's FIN reached the worker while it still sends");
    w.write("answer, ");
    await new Promise((r) => setTimeout(r, 50));
    w.end("then the FIN");
    assert.equal(await got, "answer, then the FIN");
    client.destroy();
  });

  it("every socket closes after request/response exchanges, whichever peer finishes first", async () => {
    const workerClosed: Promise<void>[] = [];
    let workerFirst = true;
    const worker = createServer({ allowHalfOpen: true }, (s) => {
      workerClosed.push(closed(s));
      s.once("data", () => {
        // Half the exchanges: the worker closes as soon as it has replied (HTTP's Connection:
        // close); the other half: it waits for the client's FIN, then replies and closes.
        if (workerFirst) s.end("reply");
        else s.once("end", () => s.end("reply"));
      });
      s.resume();
    });
    servers.push(worker);
    const { port, released } = await startFront(servers, await listen(worker));

    const EXCHANGES = 40;
    for (let i = 0; i < EXCHANGES; i++) {
      workerFirst = i % 2 === 0;
      const client = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
      const got = readToEnd(client);
      client.write("request");
      if (!workerFirst) client.end();
      assert.equal(await got, "reply");
      if (workerFirst) client.end();
      await closed(client);
    }
    await Promise.all(released);
    await Promise.all(workerClosed);
    assert.equal(workerClosed.length, EXCHANGES);
  });
});
