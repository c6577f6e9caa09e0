/**
 * A TCP worker process for the reliability tests, with the behaviours a fault test needs:
 * `node tcp-worker-main.js --name NAME --mode echo|silent|slow [--greet] [--delay-ms N] [--port P]`.
 * - echo: (greeting `NAME\n` with --greet, then) every byte back; after the client's FIN it ends.
 * - silent: accepts and reads, never writes and never closes: a connect probe passes, nothing else.
 * - slow: greets at once, then sends each chunk back after --delay-ms.
 * --port binds a given port (default any), so a killed worker can come back on its old address.
 * Prints `{"event":"listening","address":"127.0.0.1:PORT"}`; answers `{"cmd":"stats"}` with its
 * connection and byte counts (connect probes included: they are connections too).
 */
import { createServer, type Socket } from "node:net";
import { parseArgs } from "node:util";
import { emit, serveCommands } from "./child-protocol.js";

const { values } = parseArgs({
  options: {
    name: { type: "string", default: "worker" },
    mode: { type: "string", default: "echo" },
    greet: { type: "boolean", default: false },
    "delay-ms": { type: "string", default: "0" },
    port: { type: "string", default: "0" },
  },
});
const mode = values.mode;
if (mode !== "echo" && mode !== "silent" && mode !== "slow") {
  process.stderr.write(`--mode: expected echo | silent | slow, got ${mode}\n`);
  process.exit(2);
}
const delayMs = Number(values["delay-ms"]);
const open = new Set<Socket>();
/** `ended`: connections whose peer sent its FIN (a silent worker keeps them, half-closed). */
const counts = { accepted: 0, ended: 0, closed: 0, bytesIn: 0, bytesOut: 0 };

function serve(socket: Socket): void {
  counts.accepted++;
  open.add(socket);
  socket.once("close", () => {
    open.delete(socket);
    counts.closed++;
  });
  socket.on("error", () => socket.destroy());
  socket.once("end", () => counts.ended++);
  socket.on("data", (chunk: Buffer) => (counts.bytesIn += chunk.length));
  const send = (data: Buffer | string): void => {
    counts.bytesOut += Buffer.byteLength(data);
    socket.write(data);
  };
  switch (mode) {
    case "echo":
      if (values.greet) send(`${values.name}\n`);
      // pipe() keeps the worker's own memory bounded when a client sends faster than it reads.
      socket.on("data", (chunk: Buffer) => (counts.bytesOut += chunk.length));
      socket.pipe(socket);
      return;
    case "silent":
      socket.resume();
      return;
    case "slow":
      send(`${values.name}\n`);
      socket.on("data", (chunk: Buffer) => {
        setTimeout(() => {
          if (!socket.destroyed) send(chunk);
        }, delayMs);
      });
      socket.once("end", () => setTimeout(() => socket.end(), delayMs));
      return;
  }
}

const server = createServer({ allowHalfOpen: true, noDelay: true }, serve);
server.listen({ host: "127.0.0.1", port: Number(values.port), backlog: 4096 }, () => {
  const a = server.address();
  const port = a && typeof a !== "string" ? a.port : 0;
  emit({ event: "listening", name: values.name, address: `127.0.0.1:${port}` });
});

serveCommands({
  stats: () => ({ open: open.size, ...counts }),
});
