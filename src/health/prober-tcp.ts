/**
 * TCP connect prober: healthy when a connection is established within the timeout (HAProxy's
 * `check` without options). It proves the port accepts, nothing more; a worker that accepts and
 * never replies passes, which is why idle_timeout exists on the data path.
 */
import { connect } from "node:net";
import type { ProbeOutcome, ProbeTarget, Prober } from "./prober.js";

export class TcpProber implements Prober {
  probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
    return new Promise((resolve) => {
      const socket = connect({ host: target.host, port: target.port });
      const timer = setTimeout(() => finish({ result: "failure", reason: "timeout" }), timeoutMs);
      function finish(outcome: ProbeOutcome): void {
        clearTimeout(timer);
        socket.removeAllListeners();
        socket.on("error", () => {});
        socket.destroy();
        resolve(outcome);
      }
      socket.once("connect", () => finish({ result: "success" }));
      socket.once("error", (err: NodeJS.ErrnoException) =>
        finish({ result: "failure", reason: err.code ?? err.message }),
      );
    });
  }

  close(): void {}
}
