/**
 * `discovery: dns` against a real DNS server on loopback (dns2, UDP, port 0) named in
 * `dns_resolvers`: an added A record becomes an endpoint within `dns_refresh` + 1 s and takes traffic,
 * a removed one stops taking new work while an open connection finishes, AAAA records work, a
 * failing server keeps the last good set, and gRPC streams follow the records too. Workers share one
 * port on several loopback addresses (127.0.0.x, ::1), as the pods behind a headless Service do.
 */
import { grpcEngine } from "../helpers/grpc-client.js";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import dns2, { type Packet, type Resource, type UDPServer } from "dns2";
import { specsFromNames } from "../../src/discovery/dns-discovery.js";
import { parseConfig } from "../../src/config/config-load.js";
import { SimGrpcWorker, simWorkerClient } from "../../src/sim/sim-grpc-worker.js";
import { SimTcpWorker } from "../../src/sim/sim-tcp-worker.js";
import {
  closeSocket,
  connectAndGreet,
  startFulcrum,
  waitFor,
  whoAnswers,
  type StartedFulcrum,
} from "../helpers/harness.js";

const REFRESH_MS = 200;
/** The acceptance deadline: a record change shows within `dns_refresh` + 1 s. */
const DEADLINE_MS = REFRESH_MS + 1000;

/** A DNS server for tests: answers A and AAAA from `records`, NXDOMAIN for unknown names. */
class TestDnsServer {
  readonly records = new Map<string, { a: string[]; aaaa: string[] }>();
  /** Answer SERVFAIL to everything (a broken resolver). */
  failing = false;
  queries = 0;
  private readonly server: UDPServer;

  constructor() {
    this.server = dns2.createUDPServer((request, send) => this.answer(request, send));
  }

  async listen(): Promise<string> {
    await this.server.listen(0, "127.0.0.1");
    return `127.0.0.1:${this.server.address().port}`;
  }

  set(name: string, a: string[], aaaa: string[] = []): void {
    this.records.set(name, { a, aaaa });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private answer(request: Packet, send: (response: Packet) => Promise<Buffer>): void {
    this.queries++;
    const { Packet: P } = dns2;
    const response = P.createResponseFromRequest(request);
    const question = request.questions[0];
    const record = question ? this.records.get(question.name.toLowerCase()) : undefined;
    if (this.failing) response.header.rcode = P.RCODE.SERVFAIL;
    else if (!question || !record) response.header.rcode = P.RCODE.NXDOMAIN;
    else {
      const [type, addresses] =
        question.type === P.TYPE.AAAA ? [P.TYPE.AAAA, record.aaaa] : [P.TYPE.A, record.a];
      if (question.type === P.TYPE.A || question.type === P.TYPE.AAAA)
        for (const address of addresses)
          response.answers.push({
            name: question.name,
            type,
            class: P.CLASS.IN,
            ttl: 0,
            address,
          } as Resource);
    }
    void send(response).catch(() => undefined);
  }
}

type Closable = { close(): Promise<void> };

/**
 * Workers on one port at several hosts (a headless Service's pods): the first takes a free port on
 * the first host, the rest bind the same port; retried on another port when one is taken.
 */
async function onOnePort<W extends Closable>(
  hosts: readonly string[],
  make: (i: number) => W,
  listen: (w: W, host: string, port: number) => Promise<number>,
): Promise<{ port: number; workers: W[] }> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const workers: W[] = [];
    try {
      let port = 0;
      for (const [i, host] of hosts.entries()) {
        const w = make(i);
        workers.push(w);
        port = await listen(w, host, port);
      }
      return { port, workers };
    } catch {
      await Promise.all(workers.map((w) => w.close()));
    }
  }
  throw new Error(`no port free on all of ${hosts.join(", ")}`);
}

function tcpWorkers(hosts: readonly string[], names: readonly string[]) {
  return onOnePort(
    hosts,
    (i) => new SimTcpWorker({ name: names[i] ?? `w${i}` }),
    async (w, host, port) => (await w.listen(host, port)).port,
  );
}

function tcpConfig(resolver: string, port: number, extra = ""): string {
  return `
listeners:
  - { name: tcp, protocol: tcp, listen: "127.0.0.1:0", cluster: workers }
clusters:
  - name: workers
    policy: round_robin
    discovery: dns
    dns_refresh: ${REFRESH_MS}ms
    dns_resolvers: ["${resolver}"]
    health_check: { type: none }
    endpoints:
      - address: workers.fulcrum.test:${port}
        weight: 7
${extra}`;
}

function addressesOf(f: StartedFulcrum, cluster = "workers"): string[] {
  return f.fulcrum
    .cluster(cluster)
    .endpoints.endpoints.map((e) => e.address)
    .sort();
}

async function answering(port: number, times: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < times; i++) seen.add(await whoAnswers(port));
  return seen;
}

describe("dns discovery", { timeout: 60_000 }, () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  let dns: TestDnsServer;
  let resolver = "";

  before(async () => {
    dns = new TestDnsServer();
    resolver = await dns.listen();
    cleanup.push(() => dns.close());
  });
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it("builds ip:port / [v6]:port specs from the records, keeping IP literals, ports and weights", () => {
    const config = parseConfig(
      `
listeners: [{ name: l, protocol: tcp, listen: "127.0.0.1:0", cluster: c }]
clusters:
  - name: c
    discovery: dns
    endpoints:
      - { address: "b.test:8001", weight: 3 }
      - { address: "10.0.0.9:8001", weight: 2 }
      - { address: "[fd00::9]:8001" }
      - { address: "b.test:9000" }
`,
      { baseDir: process.cwd() },
    ).clusters[0];
    assert.ok(config);
    const resolved = new Map([
      ["4:b.test", ["10.0.0.2", "10.0.0.1", "10.0.0.9"]],
      ["6:b.test", ["fd00::2"]],
    ]);
    assert.deepEqual(specsFromNames(config, resolved), [
      { address: "10.0.0.1:8001", weight: 3 },
      { address: "10.0.0.2:8001", weight: 3 },
      { address: "10.0.0.9:8001", weight: 3 },
      { address: "[fd00::2]:8001", weight: 3 },
      // 10.0.0.9:8001 was named twice: the first (the name's record) counts.
      { address: "[fd00::9]:8001", weight: 1 },
      { address: "10.0.0.1:9000", weight: 1 },
      { address: "10.0.0.2:9000", weight: 1 },
      { address: "10.0.0.9:9000", weight: 1 },
      { address: "[fd00::2]:9000", weight: 1 },
    ]);
  });

  it("an added A record becomes an endpoint within dns_refresh + 1 s; a removed one takes no new work", async () => {
    const { port, workers } = await tcpWorkers(["127.0.0.1", "127.0.0.2"], ["a", "b"]);
    cleanup.push(() => Promise.all(workers.map((w) => w.close())));
    dns.set("workers.fulcrum.test", ["127.0.0.1"]);
    const f = await startFulcrum(tcpConfig(resolver, port));
    cleanup.push(() => f.fulcrum.stop(0));
    const listener = f.target().port;

    // Resolved before the listener bound: the name never is an endpoint itself.
    assert.deepEqual(addressesOf(f), [`127.0.0.1:${port}`]);
    assert.equal(f.fulcrum.cluster("workers").endpoints.endpoints[0]?.weight, 7, "the endpoint's weight");
    assert.deepEqual([...(await answering(listener, 4))], ["a"]);

    dns.set("workers.fulcrum.test", ["127.0.0.1", "127.0.0.2"]);
    await waitFor(() => addressesOf(f).length === 2, DEADLINE_MS, "the added A record");
    assert.deepEqual(addressesOf(f), [`127.0.0.1:${port}`, `127.0.0.2:${port}`]);
    assert.deepEqual([...(await answering(listener, 6))].sort(), ["a", "b"]);

    // A connection open on b when its record goes: b takes no new connection, the open one finishes.
    let onB: Awaited<ReturnType<typeof connectAndGreet>> | undefined;
    for (let i = 0; i < 4 && !onB; i++) {
      const c = await connectAndGreet(listener);
      if (c.worker === "b") onB = c;
      else await closeSocket(c.socket);
    }
    assert.ok(onB, "a connection reached b");
    dns.set("workers.fulcrum.test", ["127.0.0.1"]);
    await waitFor(() => addressesOf(f).length === 1, DEADLINE_MS, "the removed A record");
    assert.deepEqual(addressesOf(f), [`127.0.0.1:${port}`]);
    assert.deepEqual([...(await answering(listener, 6))], ["a"]);
    onB.socket.resume();
    const echoed = new Promise<string>((resolve) =>
      onB.socket.once("data", (d: Buffer) => resolve(String(d))),
    );
    onB.socket.write("still here");
    assert.equal(await echoed, "still here");
    await closeSocket(onB.socket);
    await f.fulcrum.stop(0);
  });

  it("AAAA records become [v6]:port endpoints that take traffic", async () => {
    const { port, workers } = await tcpWorkers(["127.0.0.1", "::1"], ["v4", "v6"]);
    cleanup.push(() => Promise.all(workers.map((w) => w.close())));
    dns.set("workers.fulcrum.test", ["127.0.0.1"]);
    const f = await startFulcrum(tcpConfig(resolver, port));
    cleanup.push(() => f.fulcrum.stop(0));
    const listener = f.target().port;

    dns.set("workers.fulcrum.test", ["127.0.0.1"], ["::1"]);
    await waitFor(() => addressesOf(f).length === 2, DEADLINE_MS, "the added AAAA record");
    assert.deepEqual(addressesOf(f), [`127.0.0.1:${port}`, `[::1]:${port}`]);
    assert.deepEqual([...(await answering(listener, 6))].sort(), ["v4", "v6"]);

    dns.set("workers.fulcrum.test", [], ["::1"]);
    await waitFor(() => addressesOf(f).length === 1, DEADLINE_MS, "only the AAAA record left");
    assert.deepEqual(addressesOf(f), [`[::1]:${port}`]);
    assert.deepEqual([...(await answering(listener, 4))], ["v6"]);
    await f.fulcrum.stop(0);
  });

  it("a failing DNS server keeps the last good set; an IP literal endpoint stays as configured", async () => {
    const { port, workers } = await tcpWorkers(["127.0.0.1", "127.0.0.2"], ["a", "b"]);
    cleanup.push(() => Promise.all(workers.map((w) => w.close())));
    dns.set("workers.fulcrum.test", ["127.0.0.2"]);
    const f = await startFulcrum(tcpConfig(resolver, port, `      - address: 127.0.0.1:${port}`));
    cleanup.push(async () => {
      dns.failing = false;
      await f.fulcrum.stop(0);
    });
    assert.deepEqual(addressesOf(f), [`127.0.0.1:${port}`, `127.0.0.2:${port}`]);

    dns.failing = true;
    const before = dns.queries;
    // Several refreshes fail (the server saw them) while the endpoints stay.
    await waitFor(() => dns.queries >= before + 6, 5 * DEADLINE_MS, "failing lookups");
    assert.deepEqual(addressesOf(f), [`127.0.0.1:${port}`, `127.0.0.2:${port}`]);
    assert.deepEqual([...(await answering(f.target().port, 6))].sort(), ["a", "b"]);
    assert.ok(
      f.lines.some((l) => (l as { msg?: string; level?: string }).level === "warn"),
      "a warning says the lookup failed",
    );

    // Once the server answers again, an NXDOMAIN is an answer: the name's endpoints go, the literal stays.
    dns.records.delete("workers.fulcrum.test");
    dns.failing = false;
    await waitFor(() => addressesOf(f).length === 1, DEADLINE_MS, "the name's endpoint removed");
    assert.deepEqual(addressesOf(f), [`127.0.0.1:${port}`]);
    await f.fulcrum.stop(0);
  });

  it("a dns_resolvers entry that is not an IP address is refused by path at start", async () => {
    await assert.rejects(
      startFulcrum(`
listeners: [{ name: l, protocol: tcp, listen: "127.0.0.1:0", cluster: c }]
clusters:
  - name: c
    discovery: dns
    dns_resolvers: ["dns.fulcrum.test:53"]
    endpoints: [{ address: "workers.fulcrum.test:9000" }]
`),
      (err: Error) => {
        assert.equal(err.name, "ConfigError");
        assert.match(err.message, /^clusters\[0\]\.dns_resolvers\[0\]: expected an IP address/);
        return true;
      },
    );
  });

  it("gRPC streams follow the records", async () => {
    const { port, workers } = await onOnePort(
      ["127.0.0.3", "127.0.0.4"],
      (i) => new SimGrpcWorker({ name: `g${i + 1}` }),
      (w, host, p) => w.listen(host, p).then((b) => b.port),
    );
    cleanup.push(() => Promise.all(workers.map((w) => w.close())));
    dns.set("gpus.fulcrum.test", ["127.0.0.3"]);
    const f = await startFulcrum(`
listeners:
  - { name: grpc, protocol: grpc, engine: ${grpcEngine()}, listen: "127.0.0.1:0", cluster: gpus }
clusters:
  - name: gpus
    policy: round_robin
    discovery: dns
    dns_refresh: ${REFRESH_MS}ms
    dns_resolvers: ["${resolver}"]
    endpoints:
      - address: gpus.fulcrum.test:${port}
`);
    cleanup.push(() => f.fulcrum.stop(0));
    const client = simWorkerClient(f.fulcrum.addressOf("grpc"));
    cleanup.push(() => Promise.resolve(client.close()));
    const call = (): Promise<string> =>
      new Promise((resolve, reject) =>
        client.Infer(Buffer.from("x"), (err, reply) => (err ? reject(err) : resolve(String(reply)))),
      );
    const replies = async (n: number): Promise<string[]> => {
      const seen = new Set<string>();
      for (let i = 0; i < n; i++) seen.add(await call());
      return [...seen].sort();
    };

    assert.deepEqual(await replies(4), ["g1"]);
    dns.set("gpus.fulcrum.test", ["127.0.0.3", "127.0.0.4"]);
    await waitFor(() => addressesOf(f, "gpus").length === 2, DEADLINE_MS, "the added A record");
    assert.deepEqual(await replies(6), ["g1", "g2"]);
    dns.set("gpus.fulcrum.test", ["127.0.0.4"]);
    await waitFor(() => addressesOf(f, "gpus").length === 1, DEADLINE_MS, "the removed A record");
    assert.deepEqual(addressesOf(f, "gpus"), [`127.0.0.4:${port}`]);
    assert.deepEqual(await replies(6), ["g2"]);
    client.close();
    await f.fulcrum.stop(0);
  });
});
