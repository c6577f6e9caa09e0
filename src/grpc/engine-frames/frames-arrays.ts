/**
 * Empties an array in place without V8's runtime: `length = 0` always calls into it, `pop()` stays
 * in compiled code. For the short arrays of the frame path (queued DATA views, a header block's
 * fragments, a turn's output parts), which are often empty already.
 */
export function emptyArray(items: unknown[]): void {
  while (items.length > 0) items.pop();
}
