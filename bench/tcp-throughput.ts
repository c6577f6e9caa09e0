/**
 * TCP bulk throughput: direct vs through Fulcrum (its CLI as a child process), interleaved runs, one
 * invocation, so the figures are ratios on the same noisy machine. The sink is its own process; the
 * source writes one preallocated buffer repeatedly, so the source costs as little as possible.
 *
 *   npm run bench:tcp -- [--mib 2048] [--repeat 3]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const CLI = fileURLToPath(new URL("../src/cli.js", import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const NAIVE = fileURLToPath(new URL("./peers/naive-pipe-proxy.js", import.meta.url));

/** Sink mode (run as a child): count bytes, answer the count when the sender half-closes. */
function runSink(): void {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    let bytes = 0;
    s.on("data", (c: Buffer) => (bytes += c.length));
    s.on("end", () => s.end(`${bytes}\n`));
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

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function send(port: number, bytes: number): Promise<number> {
  const chunk = Buffer.alloc(256 * 1024, 7);
  const socket = connect({ host: "127.0.0.1", port, allowHalfOpen: true, noDelay: true });
  await new Promise((r) => socket.once("connect", r));
  const started = performance.now();
  let reply = "";
  socket.on("data", (d: Buffer) => (reply += d.toString()));
  const done = new Promise((r) => socket.once("end", r));
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!socket.write(chunk)) await new Promise((r) => socket.once("drain", r));
  }
  socket.end();
  await done;
  const seconds = (performance.now() - started) / 1000;
  socket.destroy();
  if (Number(reply.trim()) !== bytes) throw new Error(`sink counted ${reply.trim()} of ${bytes} bytes`);
  return seconds;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mib: { type: "string", default: "2048" },
      repeat: { type: "string", default: "3" },
      sink: { type: "boolean" },
    },
  });
  if (values.sink) return runSink();
  const bytes = Number(values.mib) * 1024 * 1024;
  const repeat = Number(values.repeat);

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
  const proxy = spawn(process.execPath, [CLI, "--config", config, "--log-level", "info"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const proxyPort = portOf(await firstLine(proxy, listeningAddress));
  const naive = spawn(process.execPath, [NAIVE, String(sinkPort)], { stdio: ["ignore", "pipe", "inherit"] });
  const naivePort = portOf(await firstLine(naive, listeningAddress));

  const direct: number[] = [];
  const viaProxy: number[] = [];
  const proxyCpuPerGiB: number[] = [];
  const viaNaive: number[] = [];
  const naiveCpuPerGiB: number[] = [];
  const measure = async (port: number, pid: number, rates: number[], cpu: number[]): Promise<void> => {
    const cpu0 = cpuSeconds(pid);
    rates.push(bytes / (await send(port, bytes)) / 1e9);
    cpu.push((cpuSeconds(pid) - cpu0) / (bytes / 2 ** 30));
  };
  for (let i = 0; i < repeat; i++) {
    direct.push(bytes / (await send(sinkPort, bytes)) / 1e9);
    await measure(proxyPort, proxy.pid as number, viaProxy, proxyCpuPerGiB);
    await measure(naivePort, naive.pid as number, viaNaive, naiveCpuPerGiB);
  }
  proxy.kill("SIGTERM");
  naive.kill("SIGTERM");
  sink.kill("SIGTERM");
  const d = median(direct);
  const p = median(viaProxy);
  const rows = [
    `TCP bulk, ${values.mib} MiB one way, median of ${repeat} interleaved runs (node ${process.version})`,
    `| path | GB/s | ratio to direct | proxy CPU s/GiB |`,
    `|---|---|---|---|`,
    `| direct | ${d.toFixed(2)} | 1.00 | - |`,
    `| fulcrum (1 thread) | ${p.toFixed(2)} | ${(p / d).toFixed(2)} | ${median(proxyCpuPerGiB).toFixed(2)} |`,
    `| naive node pipe() proxy | ${median(viaNaive).toFixed(2)} | ${(median(viaNaive) / d).toFixed(2)} | ${median(naiveCpuPerGiB).toFixed(2)} |`,
  ];
  process.stdout.write(rows.join("\n") + "\n");
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
