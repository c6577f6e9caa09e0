/**
 * A live progress bar (cli-progress) on a terminal; nothing at all when stderr is not a TTY or CI is
 * set, so CI logs stay readable.
 */
import cliProgress from "cli-progress";

export interface Progress {
  update(doneMs: number, requests: number): void;
  stop(): void;
}

export function progressBar(label: string, totalMs: number): Progress {
  if (!process.stderr.isTTY || process.env["CI"]) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {requests} requests | {rate}/s`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(Math.max(1, Math.round(totalMs)), 0, { requests: 0, rate: 0 });
  let last = 0;
  return {
    update(doneMs, requests) {
      const now = performance.now();
      if (now - last < 200) return;
      last = now;
      bar.update(Math.min(Math.round(doneMs), Math.round(totalMs)), {
        requests,
        rate: doneMs > 0 ? Math.round((requests * 1000) / doneMs) : 0,
      });
    },
    stop() {
      bar.stop();
    },
  };
}
