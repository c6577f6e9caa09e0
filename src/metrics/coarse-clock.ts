/**
 * A wall clock read from a variable instead of a call: `Date.now()` refreshed every 250 ms by one
 * unref'd timer per thread. The latency windows only need to know which 10-second bucket a stream
 * ended in, and a `Date.now()` per stream cost as much as the rest of the recording.
 */
const TICK_MS = 250;

let now = Date.now();
let timer: NodeJS.Timeout | undefined;

/** Epoch ms, at most `TICK_MS` old (exact on the first call of a thread). */
export function coarseNow(): number {
  if (!timer) {
    now = Date.now();
    timer = setInterval(() => (now = Date.now()), TICK_MS);
    timer.unref();
  }
  return now;
}
