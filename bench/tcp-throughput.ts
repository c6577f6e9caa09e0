/**
 * TCP bulk throughput: direct vs through Fulcrum (its CLI as a child process) vs a naive `pipe()`
 * proxy, interleaved runs, one invocation, so the figures are ratios on the same noisy machine. The
 * worker is its own process; the sending side writes one preallocated buffer repeatedly, so it costs
 * as little as possible. Per proxy: CPU seconds and minor page faults per GiB, from /proc (the
 * faults show a heap that the allocator keeps trimming and regrowing: every read lands in fresh pages).
 *
 *   npm run bench:tcp -- [--mib 2048] [--repeat 3] [--reverse] [--baseline path/to/cli.js]
 *
 * `--reverse`: the worker sends and the client receives (Fulcrum reads from its upstream socket)
 * instead of client → worker. `--baseline`: a second Fulcrum CLI (say, a build of an earlier commit
 * in another directory) measured in the same interleaved runs, for before/after figures.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const CLI = fileURLToPath(new URL("../src/cli.js", import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const NAIVE = fileURLToPath(new URL("./peers/naive-pipe-proxy.js", import.meta.url));

const CHUNK = Buffer.alloc(256 * 1024, 7);

/** Writes `bytes` bytes of CHUNK with backpressure. */
async function writeBytes(socket: Socket, bytes: number): Promise<void> {
  for (let sent = 0; sent < bytes; sent += CHUNK.length) {
    if (!socket.write(CHUNK)) await new Promise((r) => socket.once("drain", r));
  }
}

/**
 * Worker mode (run as a child). Forward: count bytes, answer the count when the sender half-closes.
 * Reverse (a first line `send N`): send N bytes, then half-close.
 */
function runSink(): void {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    let bytes = 0;
    let head = "";
    s.on("data", (c: Buffer) => {
      if (bytes === 0 && head.length < 32 && c[0] === 0x73 /* "s" */) {
        head += c.toString("latin1");
        const m = /^send (\d+)\n/.exec(head);
        if (m) void writeBytes(s, Number(m[1])).then(() => s.end());
        return;
      }
      bytes += c.length;
    });
    s.on("end", () => {
      if (head === "") s.end(`${bytes}\n`);
    });
    s.on("error", () => s.destroy());
  });
  server.listen(0, "127.0.0.1", () => {
    process.stdout.write(`${(server.address() as { port: number }).port}\n`);
  });
}

function firstLine(child: ChildProcess, match: (line: string) => string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    child.stdout?.on("data", (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split("\n")) {
        const m = match(line);
        if (m !== undefined) return resolve(m);
      }
    });
    child.once("exit", (code) => reject(new Error(`child exited ${code}`)));
  });
}

/** CPU seconds (user + system) and minor page faults of a process so far. */
function usage(pid: number): { cpu: number; faults: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return { cpu: (Number(fields[11]) + Number(fields[12])) / 100, faults: Number(fields[7]) };
}

/** Client → worker: sends `bytes`, half-closes, checks the worker's count; resolves with seconds. */
async function send(port: number, bytes: number): Promise<number> {
  const socket = connect({ host: "127.0.0.1", port, allowHalfOpen: true, noDelay: true });
  await new Promise((r) => socket.once("connect", r));
  const started = performance.now();
  let reply = "";
  socket.on("data", (d: Buffer) => (reply += d.toString()));
  const done = new Promise((r) => socket.once("end", r));
  await writeBytes(socket, bytes);
  socket.end();
  await done;
  const seconds = (performance.now() - started) / 1000;
  socket.destroy();
  if (Number(reply.trim()) !== bytes) throw new Error(`sink counted ${reply.trim()} of ${bytes} bytes`);
  return seconds;
}

/** Worker → client: asks for `bytes`, counts them until the worker's FIN; resolves with seconds. */
async function receive(port: number, bytes: number): Promise<number> {
  const socket = connect({ host: "127.0.0.1", port, allowHalfOpen: true, noDelay: true });
  await new Promise((r) => socket.once("connect", r));
  const started = performance.now();
  let got = 0;
  socket.on("data", (d: Buffer) => (got += d.length));
  const done = new Promise((r) => socket.once("end", r));
  socket.end(`send ${bytes}\n`);
  await done;
  const seconds = (performance.now() - started) / 1000;
  socket.destroy();
  if (got !== bytes) throw new Error(`received ${got} of ${bytes} bytes`);
  return seconds;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

interface Proxy {
  readonly name: string;
  readonly child: ChildProcess;
  readonly port: number;
  readonly rates: number[];
  readonly cpuPerGiB: number[];
  readonly faultsPerGiB: number[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mib: { type: "string", default: "2048" },
      repeat: { type: "string", default: "3" },
      reverse: { type: "boolean", default: false },
      baseline: { type: "string" },
      sink: { type: "boolean" },
    },
  });
  if (values.sink) return runSink();
  const bytes = Number(values.mib) * 1024 * 1024;
  const repeat = Number(values.repeat);
  const transfer = values.reverse ? receive : send;

  const sink = spawn(process.execPath, [SELF, "--sink"], { stdio: ["ignore", "pipe", "inherit"] });
  const sinkPort = Number(await firstLine(sink, (l) => (/^\d+$/.test(l) ? l : undefined)));
  const dir = mkdtempSync(join(tmpdir(), "fulcrum-bench-"));
  const config = join(dir, "fulcrum.yaml");
  writeFileSync(
    config,
    `log: { level: warn }\nlisteners:\n  - { name: bench, protocol: tcp, listen: "127.0.0.1:0", cluster: sink }\nclusters:\n  - { name: sink, health_check: { type: none }, endpoints: [{ address: "127.0.0.1:${sinkPort}" }] }\n`,
  );
  const listeningAddress = (l: string): string | undefined => {
    if (!l.startsWith("{")) return undefined;
    const j = JSON.parse(l) as { msg?: string; address?: string };
    return j.msg === "listening" ? j.address : undefined;
  };
  const portOf = (address: string): number => Number(/:(\d+)$/.exec(address)?.[1]);
  const start = async (name: string, args: string[]): Promise<Proxy> => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    const port = portOf(await firstLine(child, listeningAddress));
    return { name, child, port, rates: [], cpuPerGiB: [], faultsPerGiB: [] };
  };
  const fulcrumArgs = (cli: string): string[] => [cli, "--config", config, "--log-level", "info"];
  const proxies = [await start("fulcrum (1 thread)", fulcrumArgs(CLI))];
  if (values.baseline) proxies.push(await start("fulcrum baseline (1 thread)", fulcrumArgs(values.baseline)));
  proxies.push(await start("naive node pipe() proxy", [NAIVE, String(sinkPort)]));

  const direct: number[] = [];
  const gib = bytes / 2 ** 30;
  for (let i = 0; i < repeat; i++) {
    direct.push(bytes / (await transfer(sinkPort, bytes)) / 1e9);
    for (const p of proxies) {
      const before = usage(p.child.pid as number);
      p.rates.push(bytes / (await transfer(p.port, bytes)) / 1e9);
      const after = usage(p.child.pid as number);
      p.cpuPerGiB.push((after.cpu - before.cpu) / gib);
      p.faultsPerGiB.push((after.faults - before.faults) / gib);
    }
  }
  for (const p of proxies) p.child.kill("SIGTERM");
  sink.kill("SIGTERM");
  const d = median(direct);
  const way = values.reverse ? "worker → client" : "client → worker";
  const rows = [
    `TCP bulk, ${values.mib} MiB ${way}, median of ${repeat} interleaved runs (node ${process.version})`,
    `| path | GB/s | ratio to direct | proxy CPU s/GiB | proxy page faults per GiB |`,
    `|---|---|---|---|---|`,
    `| direct | ${d.toFixed(2)} | 1.00 | - | - |`,
    ...proxies.map((p) => {
      const rate = median(p.rates);
      const cpu = median(p.cpuPerGiB).toFixed(2);
      return `| ${p.name} | ${rate.toFixed(2)} | ${(rate / d).toFixed(2)} | ${cpu} | ${Math.round(median(p.faultsPerGiB))} |`;
    }),
  ];
  process.stdout.write(rows.join("\n") + "\n");
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
