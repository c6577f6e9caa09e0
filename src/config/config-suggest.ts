/**
 * "Did you mean" for an unknown key: the valid key at that place within edit distance 2, by the
 * optimal string alignment distance (Levenshtein plus adjacent transpositions, Damerau 1964), so
 * `polcy`, `wieght` and `endpiont` each count one or two edits. Short keys need a closer match than
 * long ones (a one-letter typo may not become a two-letter key), and a tie goes to the key the
 * schema lists first.
 */
import type { z } from "zod";

/** Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const up = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/** The candidate closest to `word` within 2 edits (fewer than `word` has letters), if any. */
export function closestKey(word: string, candidates: readonly string[]): string | undefined {
  const limit = Math.min(2, word.length - 1);
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

type Def = {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  in?: z.ZodType;
};
const defOf = (s: z.ZodType): Def => s._zod.def;

/** The schema below wrappers (optional, default, prefault, pipe) that change no keys. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    const inner = def.innerType ?? (def.type === "pipe" ? def.in : undefined);
    if (!inner) return s;
    s = inner;
  }
}

/** The keys an object schema accepts at `path` (list indexes step into items), in schema order. */
export function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let s = unwrap(schema);
  for (const part of path) {
    const def = defOf(s);
    if (typeof part === "number" && def.type === "array" && def.element) s = unwrap(def.element);
    else if (typeof part === "string" && def.type === "object" && def.shape?.[part])
      s = unwrap(def.shape[part]);
    else return [];
  }
  const def = defOf(s);
  return def.type === "object" && def.shape ? Object.keys(def.shape) : [];
}
