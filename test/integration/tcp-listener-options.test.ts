/**
 * Listener options over real TCP: PROXY protocol v1 and v2 (parsed at the worker by a parser written
 * here, independent of the encoder) for 127.0.0.x and ::1; idle_timeout; max_connections.
 */
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, describe, it } from "node:test";
import type { SimTcpWorker } from "../../src/sim/sim-tcp-worker.js";
import {
  closeSocket,
  connectAndGreet,
  metricValue,
  startFulcrum,
  startWorkers,
  waitFor,
  type StartedFulcrum,
} from "../helpers/harness.js";

interface Seen {
  src: string;
  sport: number;
  dst: string;
  dport: number;
}

/** Parses one PROXY header (v1 text or v2 binary) from the start of `buf`; undefined if incomplete. */
function parseProxyHeader(buf: Buffer): { seen: Seen; version: 1 | 2; length: number } | undefined {
  const sig = Buffer.from("0d0a0d0a000d0a515549540a", "hex");
  if (buf.length >= 16 && buf.subarray(0, 12).equals(sig)) {
    const len = buf.readUInt16BE(14);
    if (buf.length < 16 + len) return undefined;
    assert.equal(buf[12], 0x21, "version 2, PROXY command");
    const fam = buf[13];
    if (fam === 0x11) {
      const ip = (o: number): string => [0, 1, 2, 3].map((i) => buf[o + i]).join(".");
      return {
        version: 2,
        length: 16 + len,
        seen: { src: ip(16), dst: ip(20), sport: buf.readUInt16BE(24), dport: buf.readUInt16BE(26) },
      };
    }
    assert.equal(fam, 0x21, "TCP over IPv6");
    const ip6 = (o: number): string => {
      const groups: string[] = [];
      for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(o + 2 * i).toString(16));
      return groups.join(":");
    };
    return {
      version: 2,
      length: 16 + len,
      seen: { src: ip6(16), dst: ip6(32), sport: buf.readUInt16BE(48), dport: buf.readUInt16BE(50) },
    };
  }
  const end = buf.indexOf("\r\n");
  if (end < 0) return undefined;
  const parts = buf.subarray(0, end).toString("latin1").split(" ");
  assert.equal(parts[0], "PROXY");
  assert.ok(parts[1] === "TCP4" || parts[1] === "TCP6", `family ${parts[1]}`);
  return {
    version: 1,
    length: end + 2,
    seen: { src: parts[2] ?? "", dst: parts[3] ?? "", sport: Number(parts[4]), dport: Number(parts[5]) },
  };
}

function listen(server: Server, host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, host, () => resolve((server.address() as { port: number }).port)),
  );
}

describe("tcp listener options", { timeout: 60_000 }, () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("writes PROXY v1 and v2 headers that carry the client's address, for 127.0.0.x and ::1", async () => {
    const seen: { header: ReturnType<typeof parseProxyHeader>; rest: string }[] = [];
    const server = createServer((s: Socket) => {
      let buf = Buffer.alloc(0);
      s.on("data", (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        const h = parseProxyHeader(buf);
        if (!h) return;
        s.removeAllListeners("data");
        seen.push({ header: h, rest: buf.subarray(h.length).toString() });
        s.end("ok\n");
      });
    });
    const port = await listen(server);
    cleanups.push(() => new Promise((r) => server.close(() => r())));
    const f = await startFulcrum(`
listeners:
  - { name: v1-4, protocol: tcp, listen: "127.0.0.1:0", cluster: w, proxy_protocol: v1 }
  - { name: v2-4, protocol: tcp, listen: "127.0.0.1:0", cluster: w, proxy_protocol: v2 }
  - { name: v1-6, protocol: tcp, listen: "[::1]:0", cluster: w, proxy_protocol: v1 }
  - { name: v2-6, protocol: tcp, listen: "[::1]:0", cluster: w, proxy_protocol: v2 }
clusters:
  - name: w
    health_check: { type: none }
    endpoints: [{ address: "127.0.0.1:${port}" }]
`);
    cleanups.push(() => f.fulcrum.stop(0));

    const cases = [
      { listener: "v1-4", version: 1, local: "127.0.0.7", dst: "127.0.0.1" },
      { listener: "v2-4", version: 2, local: "127.0.0.9", dst: "127.0.0.1" },
      { listener: "v1-6", version: 1, local: "::1", dst: "::1" },
      { listener: "v2-6", version: 2, local: "::1", dst: "0:0:0:0:0:0:0:1" },
    ] as const;
    for (const c of cases) {
      const target = f.target(c.listener);
      const client = connect({ host: target.host, port: target.port, localAddress: c.local });
      await new Promise((r) => client.once("connect", r));
      const clientPort = client.localPort;
      client.write("payload");
      let reply = "";
      client.on("data", (d: Buffer) => (reply += d.toString()));
      await new Promise((r) => client.once("end", r));
      client.destroy();
      assert.equal(reply, "ok\n");
      const last = seen.at(-1);
      assert.ok(last?.header, c.listener);
      assert.equal(last.header.version, c.version, c.listener);
      const expectedSrc = c.version === 2 && c.local === "::1" ? "0:0:0:0:0:0:0:1" : c.local;
      assert.deepEqual(
        last.header.seen,
        { src: expectedSrc, sport: clientPort, dst: c.dst, dport: target.port },
        c.listener,
      );
    }
    assert.equal(seen.length, 4);
  });

  it("idle_timeout closes both sides of a silent connection", async () => {
    const workers: SimTcpWorker[] = await startWorkers(["idle"]);
    cleanups.push(() => Promise.all(workers.map((w) => w.close())).then(() => undefined));
    const f = await startFulcrum(`
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:0", cluster: w, idle_timeout: 300ms }
clusters:
  - name: w
    health_check: { type: none }
    endpoints: [{ address: "127.0.0.1:${workers[0]?.port}" }]
`);
    cleanups.push(() => f.fulcrum.stop(0));
    const { socket } = await connectAndGreet(f.target().port);
    const opened = Date.now();
    socket.resume();
    await new Promise((r) => socket.once("close", r));
    const idleFor = Date.now() - opened;
    assert.ok(idleFor >= 250, `closed after ${idleFor} ms, before the idle timeout`);
    await waitFor(
      () => (workers[0] as SimTcpWorker).connections.size === 0,
      2000,
      "the worker side to close",
    );
  });

  it("max_connections: connection N+1 is closed at once and counted", async () => {
    const workers: SimTcpWorker[] = await startWorkers(["m"]);
    cleanups.push(() => Promise.all(workers.map((w) => w.close())).then(() => undefined));
    const f: StartedFulcrum = await startFulcrum(`
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:0", cluster: w, max_connections: 2 }
clusters:
  - name: w
    health_check: { type: none }
    endpoints: [{ address: "127.0.0.1:${workers[0]?.port}" }]
`);
    cleanups.push(() => f.fulcrum.stop(0));
    const a = await connectAndGreet(f.target().port);
    const b = await connectAndGreet(f.target().port);
    await assert.rejects(connectAndGreet(f.target().port), /closed before greeting|ECONNRESET/);
    assert.equal(
      await metricValue(f.registry, "fulcrum_downstream_connections_refused_total", {
        listener: "in",
        reason: "max_connections",
      }),
      1,
    );
    await closeSocket(a.socket);
    await waitFor(
      () =>
        f.fulcrum.clusters
          .get("w")
          ?.endpoints.endpoints.every((e) => f.fulcrum.cluster("w").endpoints.activeOf(e) === 1) ?? false,
      2000,
      "one connection left",
    );
    const c = await connectAndGreet(f.target().port);
    assert.equal(c.worker, "m", "a slot freed by a close is usable again");
    await closeSocket(b.socket);
    await closeSocket(c.socket);
  });
});
