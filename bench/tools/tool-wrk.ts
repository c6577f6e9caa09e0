/**
 * wrk for TCP request/response through an L4 proxy: HTTP/1.1 GETs to the NGINX HTTP backend, either
 * over kept-alive connections or with `Connection: close` (a new TCP connection per request).
 * Latency percentiles come from `--latency`.
 */
import { TOOLS } from "../proc/proc-debian.js";
import type { ToolResult } from "./tool-result.js";
import { runTool } from "./tool-run.js";

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function latencyMs(out: string, pct: string): number | undefined {
  const m = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m").exec(out);
  return m ? Number(m[1]) * (UNIT_MS[m[2] ?? "ms"] ?? 1) : undefined;
}

export function parseWrk(out: string): ToolResult {
  const requests = Number(/(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(out)?.[1] ?? NaN);
  const dur = /\d+ requests in ([\d.]+)(us|ms|s|m)/.exec(out);
  const seconds = dur ? (Number(dur[1]) * (UNIT_MS[dur[2] ?? "s"] ?? 1)) / 1000 : NaN;
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = sock ? sock.slice(1).reduce((n, v) => n + Number(v), 0) : 0;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  if (!Number.isFinite(requests) || !Number.isFinite(seconds)) throw new Error(`wrk: cannot parse:\n${out}`);
  return {
    requests,
    bytes: 0,
    seconds,
    p50Ms: latencyMs(out, "50"),
    p99Ms: latencyMs(out, "99"),
    errors: socketErrors + non2xx,
  };
}

export async function wrk(
  port: number,
  seconds: number,
  connections: number,
  newConnectionPerRequest: boolean,
): Promise<ToolResult> {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", "--timeout", "5s"];
  if (newConnectionPerRequest) args.push("-H", "Connection: close");
  args.push(`http://127.0.0.1:${port}/`);
  return parseWrk(await runTool("wrk", TOOLS.wrk.binary, args, (seconds + 20) * 1000));
}
