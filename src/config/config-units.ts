/**
 * Converts the contract's duration (`^\d+(ms|s|m|h)$`, or 0 where allowed) and size
 * (`^\d+(B|KiB|MiB)$`) strings, validated by the schema, into milliseconds and bytes.
 */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 * 1024 };

export function durationMs(value: string | number): number {
  if (value === 0 || value === "0") return 0;
  const m = /^(\d+)(ms|s|m|h)$/.exec(String(value));
  if (!m) throw new RangeError(`not a duration: ${JSON.stringify(value)}`);
  return Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
}

export function sizeBytes(value: string): number {
  const m = /^(\d+)(B|KiB|MiB)$/.exec(value);
  if (!m) throw new RangeError(`not a size: ${JSON.stringify(value)}`);
  return Number(m[1]) * (SIZE_UNITS[m[2] as string] as number);
}
