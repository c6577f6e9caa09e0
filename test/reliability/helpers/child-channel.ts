/**
 * Child processes for the reliability tests (workers, load clients) and the small JSON-lines protocol
 * the test speaks with them: the child prints one JSON object per line on stdout (events, and replies
 * carrying the id of a request); the test writes requests as JSON lines on the child's stdin. Running
 * them as processes keeps their sockets, memory and CPU out of the process being measured, and lets a
 * test SIGKILL or SIGSTOP a worker for real. A child exits when its stdin closes, so a test that dies
 * leaves nothing behind.
 */
import { spawn, type ChildProcess } from "node:child_process";

export interface SpawnNodeOptions {
  /**
   * Raise the child's soft open-files limit to this before it starts (`ulimit -Sn` in a shell that
   * then execs Node, so the pid stays the Node process).
   */
  readonly openFiles?: number | undefined;
  /** Node and V8 flags before the script (Fulcrum's `NODE_FLAGS`). */
  readonly nodeFlags?: readonly string[];
}

/** Runs `script` on the Node binary running the tests (Node 22 under the npm scripts). */
export function spawnNode(
  script: string,
  args: readonly string[],
  options: SpawnNodeOptions = {},
): ChildProcess {
  const stdio: ["pipe", "pipe", "pipe"] = ["pipe", "pipe", "pipe"];
  const node = [...(options.nodeFlags ?? []), script, ...args];
  if (options.openFiles === undefined) return spawn(process.execPath, node, { stdio });
  return spawn(
    "bash",
    [
      "-c",
      'ulimit -Sn "$1" && shift && exec "$@"',
      "bash",
      String(options.openFiles),
      process.execPath,
      ...node,
    ],
    { stdio },
  );
}

export type Message = Record<string, unknown>;

export class ChildChannel {
  /** Every JSON line the child printed, in order. */
  readonly messages: Message[] = [];
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private out = "";
  private err = "";
  private rawOut = "";
  private nextId = 1;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly child: ChildProcess,
    readonly name: string,
  ) {
    this.exit = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        resolve({ code, signal });
        for (const w of this.waiters) w();
      }),
    );
    child.stdin?.on("error", () => {}); // a killed child closes its stdin under a pending write
    child.stderr?.on("data", (d: Buffer) => (this.err += d.toString()));
    child.stdout?.on("data", (d: Buffer) => {
      const text = d.toString();
      this.rawOut += text;
      this.out += text;
      let nl: number;
      let added = false;
      while ((nl = this.out.indexOf("\n")) >= 0) {
        const line = this.out.slice(0, nl);
        this.out = this.out.slice(nl + 1);
        try {
          this.messages.push(JSON.parse(line) as Message);
          added = true;
        } catch {
          // not a protocol line (kept in stdoutText)
        }
      }
      if (added) for (const w of this.waiters) w();
    });
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} has no pid`);
    return this.child.pid;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  stdoutText(): string {
    return this.rawOut;
  }

  stderrText(): string {
    return this.err;
  }

  /** The first message (from index `from`) that matches; rejects after `timeoutMs` or if the child exits. */
  waitFor(match: (m: Message) => boolean, timeoutMs: number, what: string, from = 0): Promise<Message> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined = undefined;
      const check = (): void => {
        const found = this.messages.slice(from).find(match);
        if (found || !this.alive) {
          clearTimeout(timer);
          this.waiters.delete(check);
          if (found) resolve(found);
          else reject(new Error(`${this.name} exited while waiting for ${what}: ${this.err.slice(-2000)}`));
        }
      };
      timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Sends a command; resolves with the reply, rejects on an `error` reply or after `timeoutMs`. */
  async request(command: Message, timeoutMs: number): Promise<Message> {
    const id = this.nextId++;
    const from = this.messages.length;
    this.child.stdin?.write(`${JSON.stringify({ ...command, id })}\n`);
    const reply = await this.waitFor(
      (m) => m.reply === id,
      timeoutMs,
      `reply to ${String(command.cmd)}`,
      from,
    );
    if (typeof reply.error === "string") throw new Error(`${this.name}: ${reply.error}`);
    return reply;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal);
  }

  /** Sends `signal` (default SIGKILL) and resolves once the process is gone. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.alive) {
      this.child.kill(signal);
      // A stopped process acts on anything but SIGKILL only once continued.
      if (signal !== "SIGKILL") this.child.kill("SIGCONT");
    }
    await this.exit;
  }
}

/** Spawns `script` and resolves once it printed a line matching `ready` (e.g. its bound address). */
export async function startChild(
  name: string,
  script: string,
  args: readonly string[],
  ready: (m: Message) => boolean,
  options: SpawnNodeOptions & { timeoutMs?: number } = {},
): Promise<{ channel: ChildChannel; ready: Message }> {
  const channel = new ChildChannel(spawnNode(script, args, options), name);
  try {
    const line = await channel.waitFor(ready, options.timeoutMs ?? 15_000, "ready line");
    return { channel, ready: line };
  } catch (err) {
    await channel.kill();
    throw err;
  }
}
