/**
 * One `fulcrum call --tcp` connection: connect, send the data, half-close, and read what comes back
 * until the worker closes or the deadline passes. The first line of the answer names the worker (the
 * simulated TCP worker greets each connection with its name).
 */
import { connect } from "node:net";
import type { CallResult } from "./cli-call-result.js";

export function tcpCall(
  host: string,
  port: number,
  data: string | undefined,
  deadlineMs: number,
): Promise<CallResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let connected = false;
    let status = "OK";
    const socket = connect({ host, port, allowHalfOpen: true, noDelay: true }, () => {
      connected = true;
      socket.end(data ?? "");
    });
    const timer = setTimeout(() => {
      // A worker that keeps the connection open after our FIN: what it sent so far is the answer.
      if (!connected) status = "TIMEOUT";
      socket.destroy();
    }, deadlineMs);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("end", () => socket.end());
    socket.on("error", (err: NodeJS.ErrnoException) => (status = err.code ?? err.message));
    socket.on("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString();
      const firstLine = text.split("\n")[0]?.trim();
      resolve({
        status,
        worker: firstLine === undefined || firstLine === "" ? undefined : firstLine,
        endpoint: undefined,
        ms: performance.now() - started,
        detail: status === "OK" ? JSON.stringify(text) : "",
      });
    });
  });
}
