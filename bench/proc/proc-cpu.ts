/**
 * CPU time of a process and all its descendants from /proc (utime + stime, in seconds), so a proxy
 * that forks workers (NGINX's master and worker) is measured whole. Also a free loopback port for
 * peers that cannot report the port they bound.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";

/** Clock ticks per second (`getconf CLK_TCK`): 100 on every Linux this runs on. */
const TICKS = 100;

interface Stat {
  readonly ppid: number;
  readonly seconds: number;
}

function readStat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "comm" (which may hold spaces): state ppid ... utime(14) stime(15), 1-based.
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(rest[1]), seconds: (Number(rest[11]) + Number(rest[12])) / TICKS };
  } catch {
    return undefined;
  }
}

/** utime + stime of `pid` and every live descendant. */
export function treeCpuSeconds(pid: number): number {
  const stats = new Map<number, Stat>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readStat(Number(entry));
    if (s) stats.set(Number(entry), s);
  }
  const tree = new Set([pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [p, s] of stats) {
      if (!tree.has(p) && tree.has(s.ppid)) {
        tree.add(p);
        grew = true;
      }
    }
  }
  let total = 0;
  for (const p of tree) total += stats.get(p)?.seconds ?? 0;
  return total;
}

/** A port that was free a moment ago on 127.0.0.1 (for peers that cannot bind port 0 and say so). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}
