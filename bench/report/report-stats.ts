/** Medians and ranges over repetitions, and number formatting for the reports. */

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function spread(xs: readonly number[]): Spread | undefined {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 === 1 ? (v[mid] ?? 0) : ((v[mid - 1] ?? 0) + (v[mid] ?? 0)) / 2;
  return { median, min: v[0] ?? 0, max: v[v.length - 1] ?? 0, n: v.length };
}

/** 3 significant digits, thousands grouped: 41 200, 1.66, 0.0731. */
export function num(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return "–";
  if (x === 0) return "0";
  const abs = Math.abs(x);
  if (abs >= 1000) return Math.round(x).toLocaleString("en-US");
  const digits = Math.max(0, 2 - Math.floor(Math.log10(abs)));
  return x.toFixed(Math.min(digits, 4));
}

/** `median` or `median (min–max)` when there was more than one repetition. */
export function fmtSpread(s: Spread | undefined): string {
  if (!s) return "–";
  return s.n > 1 ? `${num(s.median)} (${num(s.min)}–${num(s.max)})` : num(s.median);
}

/** A Markdown table. */
export function mdTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}
