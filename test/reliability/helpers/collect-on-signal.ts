/**
 * A preload for the Fulcrum children of reliability tests that check what bad input leaves behind in
 * memory (loaded with `--expose-gc --import=…` when `startFulcrumProcess` is given `collectable`).
 *
 * RSS alone cannot tell that: V8 gives a grown heap back on its own schedule (its memory reducer,
 * which waits for a collection that an idle process may not make for minutes), so a process that
 * keeps nothing can sit +17 MiB above its baseline for longer than any test waits. On SIGUSR2 this
 * runs V8's most thorough collection, the one it runs under memory pressure, which also returns
 * emptied pages to the system, and prints one JSON line with what is left:
 * `{"msg":"collected","heap_used_kib":…,"external_kib":…}`. Fulcrum itself has no SIGUSR2 handler.
 */
import { writeSync } from "node:fs";

type Collect = (options: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;

const gc = (globalThis as { gc?: Collect }).gc;
if (!gc) throw new Error("collect-on-signal needs --expose-gc");

process.on("SIGUSR2", () => {
  gc({ type: "major", execution: "sync", flavor: "last-resort" });
  const { heapUsed, external } = process.memoryUsage();
  const line = { msg: "collected", heap_used_kib: heapUsed >> 10, external_kib: external >> 10 };
  // Fulcrum logs to the same pipe with synchronous writes from this thread: the lines stay whole.
  writeSync(1, `${JSON.stringify(line)}\n`);
});
