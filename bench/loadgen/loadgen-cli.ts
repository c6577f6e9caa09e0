/**
 * `npm run bench -- load [options]`: Fulcrum's gRPC load generator on its own, for users (the
 * scenarios call runLoad directly). Closed loop (`--connections × --concurrency`) or open loop
 * (`--rate`), unary or `--streaming`, sweeps over concurrency or rate, windows repeated until stable.
 */
import { mkdirSync } from "node:fs";
import { parseArgs } from "node:util";
import { runLoad, type LoadSpec } from "./loadgen-run.js";
import { progressBar } from "./loadgen-progress.js";
import { loadMarkdown, writeLoadReports, type LoadPoint } from "./loadgen-report.js";
import { stableWhen, summarise } from "./loadgen-windows.js";

const HELP = `usage: npm run bench -- load --address HOST:PORT [options]
  --method PATH          default /fulcrum.sim.Worker/Echo (streaming: /fulcrum.sim.Worker/Bidi)
  --streaming            messages on long-lived bidi streams (one per connection × concurrency)
  --connections N        HTTP/2 connections (default 1)
  --concurrency N        closed loop: requests in flight per connection (default 1)
  --rate R               open loop: R requests/s over all connections, latency from the intended send time
  --sweep-concurrency a,b,c | --sweep-rate a,b,c   one point per value
  --duration D           per point, e.g. 10s (default 10s); --count N stops after N requests
  --payload BYTES        request message size (default 100)
  --metadata k=v         request metadata, repeatable
  --deadline D           grpc-timeout, enforced locally too (default 5s)
  --window D             measure in windows of D and stop once --stable-windows agree within --stability %
  --stable-windows N     default 3;  --stability PCT  default 10
  --out DIR              write load.json and load.md there
`;

export function parseDuration(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(s);
  if (!m) throw new Error(`${what}: expected a duration like 500ms, 10s or 2m, got "${s}"`);
  return Number(m[1]) * (m[2] === "ms" ? 1 : m[2] === "s" ? 1000 : 60_000);
}

const list = (s: string | undefined): number[] | undefined => s?.split(",").map(Number);

export async function runLoadCli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      address: { type: "string" },
      method: { type: "string" },
      streaming: { type: "boolean", default: false },
      connections: { type: "string", default: "1" },
      concurrency: { type: "string", default: "1" },
      rate: { type: "string" },
      "sweep-concurrency": { type: "string" },
      "sweep-rate": { type: "string" },
      duration: { type: "string", default: "10s" },
      count: { type: "string" },
      payload: { type: "string", default: "100" },
      metadata: { type: "string", multiple: true, default: [] },
      deadline: { type: "string", default: "5s" },
      window: { type: "string" },
      "stable-windows": { type: "string", default: "3" },
      stability: { type: "string", default: "10" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.address) {
    process.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  const metadata: Record<string, string> = {};
  for (const kv of values.metadata) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new Error(`--metadata: expected key=value, got "${kv}"`);
    metadata[kv.slice(0, i).toLowerCase()] = kv.slice(i + 1);
  }
  const base: LoadSpec = {
    address: values.address,
    path: values.method ?? (values.streaming ? "/fulcrum.sim.Worker/Bidi" : "/fulcrum.sim.Worker/Echo"),
    streaming: values.streaming,
    payloadBytes: Number(values.payload),
    metadata,
    deadlineMs: parseDuration(values.deadline, "--deadline"),
    connections: Number(values.connections),
    concurrency: Number(values.concurrency),
    rate: values.rate === undefined ? undefined : Number(values.rate),
    durationMs: parseDuration(values.duration, "--duration"),
    count: values.count === undefined ? undefined : Number(values.count),
  };
  const windowMs = values.window === undefined ? undefined : parseDuration(values.window, "--window");
  const rule = { windows: Number(values["stable-windows"]), tolerance: Number(values.stability) / 100 };
  const sweepC = list(values["sweep-concurrency"]);
  const sweepR = list(values["sweep-rate"]);
  const specs: { label: string; spec: LoadSpec }[] = sweepC
    ? sweepC.map((c) => ({ label: `concurrency ${c}`, spec: { ...base, concurrency: c, rate: undefined } }))
    : sweepR
      ? sweepR.map((r) => ({ label: `rate ${r}/s`, spec: { ...base, rate: r } }))
      : [{ label: base.rate ? `rate ${base.rate}/s` : `concurrency ${base.concurrency}`, spec: base }];
  const points: LoadPoint[] = [];
  for (const { label, spec } of specs) {
    const bar = progressBar(label, spec.durationMs);
    const run = await runLoad({
      ...spec,
      windowMs,
      isStable: windowMs === undefined ? undefined : stableWhen(rule),
      onProgress: (ms, n) => bar.update(ms, n),
    });
    bar.stop();
    points.push({ label, result: summarise(run, windowMs !== undefined) });
  }
  const title = `${base.streaming ? "streaming" : "unary"} ${base.path} via ${base.address}, ${base.connections} connection(s), ${base.payloadBytes} B`;
  process.stdout.write(loadMarkdown(title, points));
  if (values.out) {
    mkdirSync(values.out, { recursive: true });
    process.stderr.write(`load: wrote ${writeLoadReports(values.out, title, base, points).join(", ")}\n`);
  }
  return points.some((p) => p.result.ok === 0) ? 1 : 0;
}
