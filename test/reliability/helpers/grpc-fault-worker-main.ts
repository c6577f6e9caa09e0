/**
 * A gRPC worker process for the fault tests, on node:http2 with no protobuf:
 * `node grpc-fault-worker-main.js --name NAME [--mode serve|silent] [--delay-ms N] [--reset-every N]
 * [--port P]`.
 * - serve: `/test.Echo/Unary` answers the worker's name after --delay-ms; with --reset-every N every
 *   Nth call is reset (RST_STREAM INTERNAL_ERROR) once its request arrived instead of answered.
 *   `/grpc.health.v1.Health/Check` answers SERVING at once.
 * - silent: accepts TCP connections and reads, never writes a byte (no SETTINGS): an HTTP/2 peer
 *   that never completes its handshake.
 * --hold keeps every unary call (no answer) until the command `{"cmd":"release"}` answers them all.
 * --port binds a given port, so a killed worker can come back on its old address.
 * Prints `{"event":"listening","address":"127.0.0.1:PORT"}`; answers `{"cmd":"stats"}`.
 */
import { constants, createServer as createH2Server, type ServerHttp2Stream } from "node:http2";
import { createServer as createTcpServer, type Server } from "node:net";
import { parseArgs } from "node:util";
import { emit, serveCommands } from "./child-protocol.js";

const { values } = parseArgs({
  options: {
    name: { type: "string", default: "worker" },
    mode: { type: "string", default: "serve" },
    "delay-ms": { type: "string", default: "0" },
    "reset-every": { type: "string", default: "0" },
    port: { type: "string", default: "0" },
    hold: { type: "boolean", default: false },
  },
});
const name = values.name;
const delayMs = Number(values["delay-ms"]);
const resetEvery = Number(values["reset-every"]);
/** Unary calls received, answered OK, reset on purpose, and ended by the caller before the answer. */
const counts = { calls: 0, ok: 0, reset: 0, cancelled: 0, probes: 0, connections: 0, held: 0 };
/** With --hold: the answers waiting for `release`. */
let held: (() => void)[] = [];

/** One uncompressed gRPC message: flag byte, u32 length, payload. */
function grpcMessage(payload: Buffer): Buffer {
  const out = Buffer.alloc(5 + payload.length);
  out.writeUInt32BE(payload.length, 1);
  payload.copy(out, 5);
  return out;
}

/** HealthCheckResponse { status: SERVING } — field 1, varint 1. */
const SERVING = grpcMessage(Buffer.from([0x08, 0x01]));
const ANSWER = grpcMessage(Buffer.from(name));

function answer(stream: ServerHttp2Stream, message: Buffer): void {
  if (stream.destroyed || stream.closed) return;
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
  stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  stream.end(message);
}

function onStream(stream: ServerHttp2Stream, headers: Record<string, string | string[] | undefined>): void {
  stream.on("error", () => {});
  const path = headers[":path"];
  stream.resume();
  if (path === "/grpc.health.v1.Health/Check") {
    counts.probes++;
    stream.once("end", () => answer(stream, SERVING));
    return;
  }
  if (path !== "/test.Echo/Unary") {
    stream.respond(
      { ":status": 200, "content-type": "application/grpc", "grpc-status": "12" },
      { endStream: true },
    );
    return;
  }
  const n = ++counts.calls;
  let settled = false;
  stream.once("close", () => {
    if (!settled) counts.cancelled++;
  });
  stream.once("end", () => {
    if (resetEvery > 0 && n % resetEvery === 0) {
      settled = true;
      counts.reset++;
      stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    const reply = (): void => {
      if (stream.destroyed || stream.closed) return;
      settled = true;
      counts.ok++;
      answer(stream, ANSWER);
    };
    if (values.hold) {
      counts.held++;
      held.push(reply);
    } else if (delayMs > 0) setTimeout(reply, delayMs);
    else reply();
  });
}

let server: Server;
if (values.mode === "silent") {
  server = createTcpServer((socket) => {
    counts.connections++;
    socket.on("error", () => {});
    socket.resume();
  });
} else if (values.mode === "serve") {
  const h2 = createH2Server();
  h2.on("connection", () => counts.connections++);
  h2.on("stream", onStream);
  h2.on("sessionError", () => {});
  server = h2;
} else {
  process.stderr.write(`--mode: expected serve | silent, got ${values.mode}\n`);
  process.exit(2);
}

server.listen({ host: "127.0.0.1", port: Number(values.port), backlog: 1024 }, () => {
  const a = server.address();
  const port = a && typeof a !== "string" ? a.port : 0;
  emit({ event: "listening", name, address: `127.0.0.1:${port}` });
});

serveCommands({
  stats: () => ({ ...counts }),
  release: () => {
    const released = held.length;
    for (const reply of held) reply();
    held = [];
    counts.held = 0;
    return { released };
  },
});
