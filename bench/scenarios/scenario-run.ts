/**
 * Runs a scenario by name with the options of the command line and turns its measurements into
 * reports: Markdown, JSON, SVG charts, and the list of problems that fail the run (`--quick` asserts
 * that every measurement moved something and saw no error).
 */
import type { TargetName } from "../targets/target.js";
import { overheadMarkdown, overheadSvg } from "../report/report-overhead.js";
import { policiesMarkdown, policiesSvg } from "../report/report-policies.js";
import { overloadMarkdown, overloadSvg } from "../report/report-overload.js";
import { llmMarkdown, llmSvg } from "../report/report-llm.js";
import { LLM_SESSION_RATE, runLlm } from "./scenario-llm.js";
import { runOverload } from "./scenario-overload.js";
import { runOverhead } from "./scenario-overhead.js";
import { runPolicies } from "./scenario-policies.js";

export const SCENARIOS = ["overhead", "policies", "overload", "llm"] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface ScenarioOptions {
  readonly targets: readonly TargetName[] | undefined;
  readonly repeat: number;
  readonly quick: boolean;
  readonly seconds: number | undefined;
  /** overhead: rows whose id contains one of these; policies: load forms whose label does. */
  readonly rows: readonly string[] | undefined;
  /** policies: only the policies whose name contains one of these. */
  readonly policies?: readonly string[] | undefined;
  readonly dir: string;
  readonly cpuProfDir: string | undefined;
  /** Threads of every proxy (overhead); default 1. */
  readonly threads?: number | undefined;
  /** Fulcrum's Node/V8 flags (overhead); default the product's `NODE_FLAGS`. */
  readonly nodeFlags?: readonly string[] | undefined;
  /** overhead: the CLI of the `fulcrum-baseline` target (another build, to compare with). */
  readonly baselineCli?: string | undefined;
  /** overhead: how many times every target is started afresh, in alternating order (default 1). */
  readonly launches?: number | undefined;
  readonly say: (line: string) => void;
}

export interface ScenarioReport {
  readonly markdown: string;
  readonly json: Record<string, unknown>;
  readonly svgs: Record<string, string>;
  readonly problems: string[];
}

export async function runScenario(name: ScenarioName, o: ScenarioOptions): Promise<ScenarioReport> {
  if (name === "overhead") {
    const ms = await runOverhead({
      targets: o.targets ?? ["direct", "fulcrum", "fulcrum-http2", "haproxy", "nginx"],
      rows: o.rows,
      repeat: o.repeat,
      seconds: o.seconds ?? (o.quick ? 1 : 8),
      dir: o.dir,
      cpuProfDir: o.cpuProfDir,
      threads: o.threads,
      nodeFlags: o.nodeFlags,
      baselineCli: o.baselineCli,
      launches: o.launches ?? 1,
      say: o.say,
    });
    const problems = ms.flatMap((m) =>
      m.problems.length > 0 && (o.quick || m.errors > 0)
        ? [`${m.row} via ${m.target}: ${m.problems.join("; ")}`]
        : [],
    );
    return {
      markdown: overheadMarkdown(ms),
      json: { measurements: ms },
      svgs: { "overhead.svg": overheadSvg(ms) },
      problems,
    };
  }
  if (name === "overload") {
    const result = await runOverload({
      targets: o.targets ?? ["fulcrum", "haproxy"],
      repeat: o.repeat,
      seconds: o.seconds ?? (o.quick ? 2 : 15),
      quick: o.quick,
      dir: o.dir,
      variants: o.policies,
      say: o.say,
    });
    return {
      markdown: overloadMarkdown(result),
      json: { ...result },
      svgs: { "overload.svg": overloadSvg(result) },
      problems: result.problems,
    };
  }
  if (name === "llm") {
    const result = await runLlm({
      targets: o.targets ?? ["fulcrum", "haproxy"],
      repeat: o.repeat,
      seconds: o.seconds ?? (o.quick ? 2 : 15),
      sessionRate: LLM_SESSION_RATE,
      dir: o.dir,
      variants: o.policies,
      say: o.say,
    });
    return {
      markdown: llmMarkdown(result),
      json: { ...result },
      svgs: { "llm.svg": llmSvg(result) },
      problems: result.problems,
    };
  }
  const result = await runPolicies({
    targets: o.targets ?? ["fulcrum", "haproxy"],
    repeat: o.repeat,
    seconds: o.seconds ?? (o.quick ? 1 : 20),
    quick: o.quick,
    dir: o.dir,
    cpuProfDir: o.cpuProfDir,
    loads: o.rows,
    policies: o.policies,
    say: o.say,
  });
  return {
    markdown: policiesMarkdown(result),
    json: { ...result },
    svgs: { "policies.svg": policiesSvg(result) },
    problems: result.problems,
  };
}
