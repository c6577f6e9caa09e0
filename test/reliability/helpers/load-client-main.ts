/**
 * A TCP load client process for the reliability tests, driven by JSON-lines commands on stdin:
 * - `open {host, port, count, window}`: opens `count` connections and holds them idle, with at most
 *   `window` connects in progress (so no accept queue overflows into SYN retries);
 * - `echo`: one byte on every held connection, and waits for that byte to come back;
 * - `close`: FIN on every held connection, and waits until each has closed;
 * - `extra {host, port, count, waitMs}`: opens `count` more connections and reports how each ended;
 * - `loop {host, port, concurrency, payloadBytes, pauseMs, maxMs}` / `stop`: closed-loop load where
 *   each connection reads the worker's greeting line, sends a payload, checks the echo and closes;
 *   one `{"event":"conn", ...}` line per connection says what happened and when (wall clock).
 */
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { emit, serveCommands, type Command } from "./child-protocol.js";

const held: Socket[] = [];

function str(c: Command, key: string): string {
  return String(c[key]);
}
function num(c: Command, key: string, fallback?: number): number {
  const v = c[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "number") throw new Error(`${key}: expected a number`);
  return v;
}

async function openHeld(c: Command): Promise<Record<string, unknown>> {
  const count = num(c, "count");
  const window = num(c, "window", 128);
  const started = Date.now();
  const errors = new Map<string, number>();
  let next = 0;
  let opened = 0;
  let failed = 0;
  await new Promise<void>((resolve) => {
    let inFlight = 0;
    const launch = (): void => {
      while (inFlight < window && next < count) {
        next++;
        inFlight++;
        const socket = connect({ host: str(c, "host"), port: num(c, "port"), noDelay: true });
        const settle = (ok: boolean, code?: string): void => {
          inFlight--;
          if (ok) {
            opened++;
            held.push(socket);
          } else {
            failed++;
            errors.set(code ?? "?", (errors.get(code ?? "?") ?? 0) + 1);
          }
          if (opened + failed === count) resolve();
          else launch();
        };
        socket.once("connect", () => {
          socket.off("error", onConnectError);
          socket.on("error", () => {});
          settle(true);
        });
        const onConnectError = (err: NodeJS.ErrnoException): void => settle(false, err.code);
        socket.once("error", onConnectError);
      }
    };
    if (count === 0) resolve();
    else launch();
  });
  return { opened, failed, errors: Object.fromEntries(errors), ms: Date.now() - started };
}

async function echoHeld(c: Command): Promise<Record<string, unknown>> {
  const timeoutMs = num(c, "timeoutMs", 60_000);
  const started = Date.now();
  const results = await Promise.all(
    held.map(
      (socket, i) =>
        new Promise<boolean>((resolve) => {
          const byte = i & 255;
          const timer = setTimeout(() => finish(false), timeoutMs);
          function finish(ok: boolean): void {
            clearTimeout(timer);
            socket.off("data", onData);
            socket.off("close", onClose);
            socket.pause();
            resolve(ok);
          }
          function onData(chunk: Buffer): void {
            finish(chunk.length === 1 && chunk[0] === byte);
          }
          function onClose(): void {
            finish(false);
          }
          socket.on("data", onData);
          socket.once("close", onClose);
          socket.write(Buffer.of(byte));
        }),
    ),
  );
  const echoed = results.filter(Boolean).length;
  return { echoed, failed: results.length - echoed, ms: Date.now() - started };
}

async function closeHeld(c: Command): Promise<Record<string, unknown>> {
  const timeoutMs = num(c, "timeoutMs", 60_000);
  const started = Date.now();
  let forced = 0;
  let clean = 0;
  await Promise.all(
    held.splice(0).map(
      (socket) =>
        new Promise<void>((resolve) => {
          if (socket.destroyed) {
            forced++;
            return resolve();
          }
          let ended = false;
          const timer = setTimeout(() => {
            forced++;
            socket.destroy();
          }, timeoutMs);
          socket.once("end", () => (ended = true));
          socket.once("close", () => {
            clearTimeout(timer);
            if (ended) clean++;
            resolve();
          });
          socket.resume();
          socket.end();
        }),
    ),
  );
  return { clean, forced, ms: Date.now() - started };
}

/** Opens `count` connections that the server is expected to refuse; reports how each ended. */
async function extra(c: Command): Promise<Record<string, unknown>> {
  const waitMs = num(c, "waitMs", 3000);
  const outcomes = await Promise.all(
    Array.from(
      { length: num(c, "count") },
      () =>
        new Promise<{ end: string; bytes: number; ms: number }>((resolve) => {
          const started = Date.now();
          let bytes = 0;
          let end = "open";
          const socket = connect({ host: str(c, "host"), port: num(c, "port") });
          socket.on("data", (d: Buffer) => (bytes += d.length));
          socket.once("end", () => (end = "fin"));
          socket.on("error", (err: NodeJS.ErrnoException) => (end = err.code ?? "error"));
          const timer = setTimeout(() => {
            socket.destroy();
            resolve({ end: "still_open", bytes, ms: Date.now() - started });
          }, waitMs);
          socket.once("close", () => {
            clearTimeout(timer);
            resolve({ end, bytes, ms: Date.now() - started });
          });
        }),
    ),
  );
  return { outcomes };
}

let looping: { stop: () => Promise<number> } | undefined;

function loop(c: Command): Record<string, unknown> {
  if (looping) throw new Error("already looping");
  const host = str(c, "host");
  const port = num(c, "port");
  const payloadBytes = num(c, "payloadBytes", 1024);
  const pauseMs = num(c, "pauseMs", 10);
  const connTimeoutMs = num(c, "connTimeoutMs", 30_000);
  const stopAt = Date.now() + num(c, "maxMs", 60_000);
  let seq = 0;
  let stopping = false;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const id = ++seq;
      const rec: Record<string, unknown> = { event: "conn", seq: id, start: Date.now() };
      const payload = randomBytes(payloadBytes);
      let buf = Buffer.alloc(0);
      let stage: "connecting" | "greeting" | "echo" | "closing" = "connecting";
      let outcome: string | undefined;
      let lastWrite = 0;
      const socket = connect({ host, port, noDelay: true });
      const timer = setTimeout(() => {
        outcome ??= "client_timeout";
        socket.destroy();
      }, connTimeoutMs);
      socket.once("connect", () => {
        rec.connected = Date.now();
        stage = "greeting";
      });
      socket.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (stage === "greeting") {
          const nl = buf.indexOf(10);
          if (nl < 0) return;
          rec.worker = buf.subarray(0, nl).toString();
          rec.greeted = Date.now();
          buf = buf.subarray(nl + 1);
          stage = "echo";
          socket.write(payload);
          lastWrite = Date.now();
        }
        if (stage === "echo" && buf.length >= payload.length) {
          rec.echoed = Date.now();
          if (!buf.equals(payload)) outcome ??= "mismatch";
          stage = "closing";
          socket.end();
        }
      });
      socket.on("error", (err: NodeJS.ErrnoException) => (outcome ??= `error:${err.code ?? err.message}`));
      socket.once("close", () => {
        clearTimeout(timer);
        rec.closed = Date.now();
        rec.lastWrite = lastWrite || rec.connected;
        if (stage === "closing") outcome ??= "ok";
        else if (stage === "greeting") outcome ??= "closed_before_greeting";
        else if (stage === "echo") outcome ??= "closed_before_echo";
        else outcome ??= "not_connected";
        rec.outcome = outcome;
        rec.stage = stage;
        emit(rec);
        resolve();
      });
    });
  const loops = Array.from({ length: num(c, "concurrency", 4) }, async () => {
    while (!stopping && Date.now() < stopAt) {
      await one();
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  });
  looping = {
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
      return seq;
    },
  };
  return { started: true };
}

async function stop(): Promise<Record<string, unknown>> {
  const current = looping;
  looping = undefined;
  return { connections: current ? await current.stop() : 0 };
}

serveCommands({ open: openHeld, echo: echoHeld, close: closeHeld, extra, loop, stop });
emit({ event: "ready" });
