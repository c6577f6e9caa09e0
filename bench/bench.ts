/**
 * `npm run bench -- <scenario> [options]`: Fulcrum's load benchmarks (see bench/README.md).
 *
 *   overhead   direct vs Fulcrum vs HAProxy vs NGINX: TCP bulk, TCP request/response, gRPC unary/streaming
 *   policies   Fulcrum's policies and HAProxy's over 4 simulated GPU workers, one 3× slower
 *   overload   goodput at 0.8×, 1.5× and 2× capacity: caps + queue vs none, Fulcrum vs HAProxy maxconn
 *   llm        conversations on an LLM fleet with prefix caches: prefix affinity vs the policies, HAProxy
 *   load       the gRPC load generator on its own, against any address (see loadgen-cli.ts)
 *
 * Options: --targets a,b  --repeat N  --cpu-prof  --quick  --out DIR  --rows a,b  --policies a,b  --seconds N  --threads N|auto  --node-flags="F"  --baseline CLI.
 * Every child process is stopped at the end, on an error and on SIGINT/SIGTERM.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir, cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { killAllNow, stopAll } from "./proc/proc-children.js";
import { summariseProfile } from "./report/report-cpu-profile.js";
import { runLoadCli } from "./loadgen/loadgen-cli.js";
import { mdTable } from "./report/report-stats.js";
import { repoRoot, TARGETS, type TargetName } from "./targets/target.js";
import { runScenario, SCENARIOS, type ScenarioName } from "./scenarios/scenario-run.js";

const USAGE = `usage: npm run bench -- <overhead|policies|overload|llm|load> [options]
  --targets a,b   overhead: ${TARGETS.join(",")} (default all); policies: fulcrum,haproxy (default both)
  --repeat N      interleaved repetitions; reports give the median and min–max (default 1)
  --cpu-prof      run Fulcrum under node --cpu-prof and print its top self-time functions
  --quick         about a second per measurement; fails unless every one has throughput and no errors
  --out DIR       where the JSON, Markdown and SVG reports go (default bench/results, --quick: test-artifacts/bench)
  --rows a,b      overhead: only rows whose id contains one of these; policies: only these loads (50,80,95,closed)
  --policies a,b  policies: only policies whose name contains one of these (e.g. least_loaded,leastconn);
                  overload, llm: only variants whose name does (e.g. "caps + queue", "prefix")
  --seconds N     seconds per measurement (overhead default 8; policies default 20 per load point)
  --threads N     overhead: threads of every proxy (Fulcrum threads, HAProxy nbthread, NGINX
                  worker_processes); "auto" = one per core (default 1)
  --baseline CLI  overhead: also run target fulcrum-baseline, another Fulcrum build's dist/src/cli.js (e.g. a
                  checkout of an earlier commit), interleaved with the others; the report adds fulcrum / fulcrum-baseline
  --launches N    overhead: start every target afresh N times, the start order turning each time, and run
                  the repetitions in each launch; with --baseline the report adds one ratio per launch
  --node-flags="F"  overhead: Fulcrum's Node/V8 flags instead of the product's (src/runtime/node-flags.ts),
                  e.g. --node-flags="--max-semi-space-size=4"; --node-flags= runs V8's defaults
  load ...        npm run bench -- load --help
`;

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n\n${USAGE}`);
  process.exit(2);
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === "load") return runLoadCli(argv.slice(1));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      targets: { type: "string" },
      repeat: { type: "string", default: "1" },
      "cpu-prof": { type: "boolean", default: false },
      quick: { type: "boolean", default: false },
      out: { type: "string" },
      rows: { type: "string" },
      policies: { type: "string" },
      seconds: { type: "string" },
      threads: { type: "string", default: "1" },
      "node-flags": { type: "string" },
      baseline: { type: "string" },
      launches: { type: "string", default: "1" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const scenario = positionals[0] as ScenarioName | undefined;
  if (!scenario || !SCENARIOS.includes(scenario)) fail(`expected a scenario: ${SCENARIOS.join(" | ")}`);
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) fail("--repeat: expected an integer ≥ 1");
  const launches = Number(values.launches);
  if (!Number.isInteger(launches) || launches < 1) fail("--launches: expected an integer ≥ 1");
  const seconds = values.seconds === undefined ? undefined : Number(values.seconds);
  if (seconds !== undefined && !(seconds >= 1)) fail("--seconds: expected a number ≥ 1");
  const threads = values.threads === "auto" ? cpus().length : Number(values.threads);
  if (!Number.isInteger(threads) || threads < 1) fail('--threads: expected an integer ≥ 1 or "auto"');
  let targets = values.targets?.split(",").map((t) => t.trim()) as TargetName[] | undefined;
  for (const t of targets ?? []) if (!TARGETS.includes(t)) fail(`--targets: unknown target "${t}"`);
  const baselineCli = values.baseline === undefined ? undefined : resolve(values.baseline);
  if (baselineCli !== undefined && !existsSync(baselineCli)) fail(`--baseline: no file ${baselineCli}`);
  if (baselineCli !== undefined && targets && !targets.includes("fulcrum-baseline"))
    targets = [...targets, "fulcrum-baseline"];
  if (baselineCli === undefined && targets?.includes("fulcrum-baseline"))
    fail("--targets fulcrum-baseline needs --baseline path/to/cli.js");

  const out = values.out ?? join(repoRoot(), values.quick ? "test-artifacts/bench" : "bench/results");
  mkdirSync(out, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), "fulcrum-bench-"));
  tempDir = dir;
  const cpuProfDir = values["cpu-prof"] ? join(dir, "cpu-profile") : undefined;
  const started = new Date();
  // Quoted where the shell needs it, so the command in a report can be pasted back.
  const shellWord = (a: string): string =>
    /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`;
  const command = `npm run bench -- ${argv.map(shellWord).join(" ")}`.trim();
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  try {
    const report = await runScenario(scenario, {
      targets,
      repeat,
      quick: values.quick,
      seconds,
      rows: values.rows?.split(","),
      policies: values.policies?.split(","),
      threads,
      nodeFlags: values["node-flags"]?.split(" ").filter((f) => f !== ""),
      baselineCli,
      launches,
      dir,
      cpuProfDir,
      say,
    });
    const header = [
      `# ${scenario}`,
      "",
      `${started.toISOString()} · ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ` +
        `${Math.round(totalmem() / 2 ** 30)} GiB · Node ${process.version} · \`${command}\``,
      "",
      "",
    ];
    let markdown = header.join("\n") + report.markdown;
    if (cpuProfDir) markdown += `\n${profileMarkdown(cpuProfDir, out)}`;
    writeFileSync(join(out, `${scenario}.md`), markdown);
    const jsonFile = join(out, `${scenario}.json`);
    const json = { scenario, date: started.toISOString(), node: process.version, command, ...report.json };
    writeFileSync(jsonFile, await formatJson(jsonFile, json));
    for (const [name, svg] of Object.entries(report.svgs)) writeFileSync(join(out, name), svg);
    process.stdout.write(`${markdown}\n`);
    say(
      `bench: reports in ${out}: ${[`${scenario}.md`, `${scenario}.json`, ...Object.keys(report.svgs)].join(", ")}`,
    );
    if (report.problems.length > 0) {
      say(`bench: FAILED:\n  ${report.problems.join("\n  ")}`);
      return 1;
    }
    return 0;
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** JSON as the project's Prettier formats it, so committed reports pass `npm run lint`. */
async function formatJson(file: string, value: unknown): Promise<string> {
  const prettier = await import("prettier");
  const options = (await prettier.resolveConfig(file)) ?? {};
  return prettier.format(JSON.stringify(value), { ...options, parser: "json" });
}

/** Summarises Fulcrum's profile and keeps it as `<out>/fulcrum.cpuprofile` (git-ignored; opens in DevTools). */
function profileMarkdown(dir: string, out: string): string {
  const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
  if (files.length === 0) return "No CPU profile was written (did Fulcrum exit cleanly?).\n";
  const file = join(dir, files[0] ?? "");
  copyFileSync(file, join(out, "fulcrum.cpuprofile"));
  const { busyMs, entries, scripts } = summariseProfile(file);
  const rows = (es: typeof entries): string[][] =>
    es.map((e) => [
      e.fn,
      e.where ? `\`${e.where}\`` : "",
      e.selfMs.toFixed(0),
      `${(e.share * 100).toFixed(1)} %`,
    ]);
  return (
    [
      `## Fulcrum CPU profile: top self time (${(busyMs / 1000).toFixed(1)} s busy)`,
      mdTable(["function", "where", "self ms", "share of busy"], rows(entries)),
      "By script (self time of all its functions):",
      mdTable(["native", "script", "self ms", "share of busy"], rows(scripts)),
    ].join("\n\n") + "\n"
  );
}

/** The run's temp directory (generated configs), removed on every way out. */
let tempDir: string | undefined;

process.on("exit", () => {
  killAllNow();
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}: stopping every child\n`);
    void stopAll(2000).then(() => process.exit(130));
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  async (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await stopAll(2000);
    process.exitCode = 1;
  },
);
