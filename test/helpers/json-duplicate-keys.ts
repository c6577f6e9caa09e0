/**
 * The keys that appear more than once in one object of a JSON text. JSON.parse keeps the last of
 * repeated keys without a word, so a log line with `"component"` twice parses fine and hides which
 * value a log shipper will see: the raw text is scanned instead (strings, nesting, keys).
 */
export function duplicateKeys(text: string): string[] {
  const found: string[] = [];
  /** One entry per open container: the keys seen so far (objects) or undefined (arrays). */
  const stack: (Set<string> | undefined)[] = [];
  /** True where the next string of the innermost object is a key. */
  let expectKey = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      const top = stack[stack.length - 1];
      if (top !== undefined && expectKey) {
        const key = JSON.parse(text.slice(i, end)) as string;
        if (top.has(key)) found.push(key);
        top.add(key);
        expectKey = false;
      }
      i = end;
      continue;
    }
    if (c === "{") {
      stack.push(new Set());
      expectKey = true;
    } else if (c === "[") {
      stack.push(undefined);
      expectKey = false;
    } else if (c === "}" || c === "]") {
      stack.pop();
      expectKey = false;
    } else if (c === ",") {
      expectKey = stack[stack.length - 1] !== undefined;
    }
    i++;
  }
  return found;
}

/** The index just past the string that opens at `start` (a `"`). */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length) {
    const c = text[i];
    if (c === "\\") i += 2;
    else if (c === '"') return i + 1;
    else i++;
  }
  throw new Error(`unterminated string at ${start}`);
}
