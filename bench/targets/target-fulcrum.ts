/**
 * Fulcrum as a target: `fulcrum` runs the default config (no `engine` key: gRPC on `frames`),
 * `fulcrum-http2` and `fulcrum-frames` name the engine explicitly. Its CLI as a child process (`process.execPath dist/src/cli.js --config FILE`,
 * the Node 22 of the npm script), one listener per spec on port 0, the ports read from its
 * `listening` log lines. With `cpuProfDir` it runs under `--cpu-prof`; the profile is written when it
 * exits after SIGTERM (it drains, then exits 0). `fulcrum-access-log` is `fulcrum` (the default config) with every
 * listener's access log on at sample 1.0: its lines go to the child's stdout, which the bench reads
 * (proc-children.ts keeps the tail), so the pipe never fills.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { NODE_FLAGS } from "../../src/runtime/node-flags.js";
import { listeningAddress, portOf, startChild } from "../proc/proc-children.js";
import { childTarget, repoRoot, type ListenerSpec, type RunningTarget, type StartOptions } from "./target.js";

/** The gRPC engine a Fulcrum target names; undefined = the config's default. */
export type FulcrumEngine = "http2" | "frames" | undefined;

export function fulcrumConfig(
  listeners: readonly ListenerSpec[],
  engine: FulcrumEngine = undefined,
  threads = 1,
  accessLog = false,
): string {
  const lines = ["log: { level: info }", "drain_timeout: 2s", `threads: ${threads}`, "listeners:"];
  for (const l of listeners) {
    const grpc = l.protocol === "grpc" && engine !== undefined ? `, engine: ${engine}` : "";
    const log = accessLog ? ", access_log: { enabled: true, sample: 1.0 }" : "";
    const split = l.perRequest ? ", stream_balancing: per_request" : "";
    lines.push(
      `  - { name: ${l.name}, protocol: ${l.protocol}${grpc}, listen: "127.0.0.1:0", cluster: ${l.name}, idle_timeout: "0"${log}${split} }`,
    );
  }
  lines.push("clusters:");
  for (const l of listeners) {
    lines.push(
      `  - name: ${l.name}`,
      `    policy: ${l.policy ?? "round_robin"}`,
      "    health_check: { type: none }",
    );
    if (l.caps)
      lines.push(
        `    max_active_per_endpoint: ${l.caps.perEndpoint}`,
        `    queue: { max_size: ${l.caps.queueSize}, timeout: ${l.caps.queueTimeoutMs}ms, ` +
          `priority_header: "${l.caps.priorityHeader}", fairness_header: "${l.caps.fairnessHeader}" }`,
      );
    if (l.prefixAffinity)
      lines.push(
        "    affinity: { key: prompt_prefix, input: text_input, block_bytes: 64, max_blocks: 256, balance_factor: 1.25 }",
      );
    if (l.loadMetrics && l.policy === "least_loaded")
      lines.push(
        `    load_metrics: { port: ${l.loadMetrics.port}, path: /metrics, interval: ${l.loadMetrics.intervalMs}ms }`,
      );
    lines.push("    endpoints:", ...l.upstreams.map((a) => `      - address: "${a}"`));
  }
  return `${lines.join("\n")}\n`;
}

export async function startFulcrum(
  listeners: readonly ListenerSpec[],
  options: StartOptions,
  engine: FulcrumEngine = undefined,
  accessLog = false,
  baselineCli?: string,
): Promise<RunningTarget> {
  const name = baselineCli
    ? "fulcrum-baseline"
    : accessLog
      ? "fulcrum-access-log"
      : engine === undefined
        ? "fulcrum"
        : (`fulcrum-${engine}` as const);
  const config = join(options.dir, `${name}.yaml`);
  writeFileSync(config, fulcrumConfig(listeners, engine, options.threads, accessLog));
  const cli = baselineCli ?? join(repoRoot(), "dist", "src", "cli.js");
  const prof = options.cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", options.cpuProfDir] : [];
  const flags = options.nodeFlags ?? NODE_FLAGS;
  const child = startChild("fulcrum", process.execPath, [...flags, ...prof, cli, "--config", config]);
  const ports = new Map<string, number>();
  await child.line((line) => {
    const address = listeningAddress(line);
    if (address === undefined) return undefined;
    const name = (JSON.parse(line) as { listener?: string }).listener ?? "";
    ports.set(name, portOf(address));
    return ports.size === listeners.length ? true : undefined;
  });
  return childTarget(name, child, ports, 10_000);
}
