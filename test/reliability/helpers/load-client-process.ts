/**
 * Starts load-client-main.js as a child process and wraps its commands.
 */
import { fileURLToPath } from "node:url";
import { startChild, type ChildChannel } from "./child-channel.js";

const MAIN = fileURLToPath(new URL("./load-client-main.js", import.meta.url));

/** One connection of a `loop`, as the client saw it (wall-clock milliseconds). */
export interface ConnRecord {
  readonly seq: number;
  readonly start: number;
  readonly connected?: number;
  readonly greeted?: number;
  readonly echoed?: number;
  readonly closed: number;
  /** When the client last sent a byte (or connected, if it never sent one). */
  readonly lastWrite?: number;
  /** The worker's greeting line. */
  readonly worker?: string;
  readonly outcome: string;
  readonly stage: string;
}

export interface ExtraOutcome {
  /** `fin`, an error code such as `ECONNRESET`, or `still_open` when the server kept it. */
  readonly end: string;
  readonly bytes: number;
  readonly ms: number;
}

export interface LoadClient {
  readonly channel: ChildChannel;
  open(
    target: { host: string; port: number },
    count: number,
    window?: number,
  ): Promise<{ opened: number; failed: number; errors: Record<string, number>; ms: number }>;
  echo(timeoutMs?: number): Promise<{ echoed: number; failed: number; ms: number }>;
  close(timeoutMs?: number): Promise<{ clean: number; forced: number; ms: number }>;
  extra(target: { host: string; port: number }, count: number, waitMs?: number): Promise<ExtraOutcome[]>;
  loop(
    target: { host: string; port: number },
    options: { concurrency: number; payloadBytes?: number; pauseMs?: number; maxMs: number },
  ): Promise<void>;
  /** Stops a loop and waits for its connections to finish; resolves with how many it opened. */
  stop(): Promise<number>;
  /** Every connection record of loops so far. */
  records(): ConnRecord[];
  kill(): Promise<void>;
}

export async function startLoadClient(options: { openFiles?: number } = {}): Promise<LoadClient> {
  const { channel } = await startChild("load client", MAIN, [], (m) => m.event === "ready", options);
  const req = (cmd: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> =>
    channel.request(cmd, timeoutMs);
  return {
    channel,
    open: async (t, count, window = 128) =>
      (await req({ cmd: "open", host: t.host, port: t.port, count, window }, 180_000)) as never,
    echo: async (timeoutMs = 60_000) => (await req({ cmd: "echo", timeoutMs }, timeoutMs + 10_000)) as never,
    close: async (timeoutMs = 60_000) =>
      (await req({ cmd: "close", timeoutMs }, timeoutMs + 10_000)) as never,
    extra: async (t, count, waitMs = 3000) =>
      (
        (await req({ cmd: "extra", host: t.host, port: t.port, count, waitMs }, waitMs + 10_000)) as {
          outcomes: ExtraOutcome[];
        }
      ).outcomes,
    loop: async (t, o) => {
      await req({ cmd: "loop", host: t.host, port: t.port, ...o }, 10_000);
    },
    stop: async () => Number((await req({ cmd: "stop" }, 60_000)).connections),
    records: () => channel.messages.filter((m) => m.event === "conn") as unknown as ConnRecord[],
    kill: () => channel.kill(),
  };
}
