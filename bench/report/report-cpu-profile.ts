/**
 * Summarises a V8 CPU profile (`.cpuprofile`, as written by `node --cpu-prof`): self time per function
 * (samples × their time deltas), aggregated by function name and location, top N first, with the share
 * of all sampled time, and the same aggregated by script (Node's http2 core, Fulcrum's own files, …).
 * `(idle)` is left out of the shares so they read as shares of busy time.
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  readonly fn: string;
  readonly where: string;
  readonly selfMs: number;
  /** Share of busy (non-idle) sampled time, 0–1. */
  readonly share: number;
}

export interface ProfileSummary {
  readonly busyMs: number;
  /** Top functions by self time. */
  readonly entries: ProfileEntry[];
  /** Top scripts by the self time of all their functions (`where` is the script, `fn` its kind). */
  readonly scripts: ProfileEntry[];
}

export function summariseProfile(file: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, { fn: string; where: string; us: number }>();
  const scripts = new Map<string, { fn: string; where: string; us: number }>();
  let busyUs = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const dt = profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0;
    if (!node) return;
    const fn = node.callFrame.functionName || "(anonymous)";
    if (fn === "(idle)" || fn === "(root)") return;
    const url = node.callFrame.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, "$1/");
    const where = url ? `${url}:${node.callFrame.lineNumber + 1}` : "";
    const key = `${fn} ${where}`;
    const e = self.get(key) ?? { fn, where, us: 0 };
    e.us += Math.max(0, dt);
    self.set(key, e);
    const script = url || fn;
    const s = scripts.get(script) ?? { fn: url ? "" : fn, where: url, us: 0 };
    s.us += Math.max(0, dt);
    scripts.set(script, s);
    busyUs += Math.max(0, dt);
  });
  const rank = (m: Map<string, { fn: string; where: string; us: number }>): ProfileEntry[] =>
    [...m.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ fn: e.fn, where: e.where, selfMs: e.us / 1000, share: busyUs > 0 ? e.us / busyUs : 0 }));
  return { busyMs: busyUs / 1000, entries: rank(self), scripts: rank(scripts) };
}
