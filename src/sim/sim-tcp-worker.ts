/**
 * A simulated TCP worker for the demo, the tests and the bench: greets each connection with its name
 * (one line), then echoes every byte; half-close is honoured (after the client's FIN it finishes
 * echoing, then ends). Tracks its open connections so tests can count and close them.
 */
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { bindServer } from "../net/server-address.js";

export interface SimTcpWorkerOptions {
  readonly name: string;
  /** Send `<name>\n` on every new connection (default true). */
  readonly greet?: boolean | undefined;
}

export class SimTcpWorker {
  readonly server: Server;
  readonly connections = new Set<Socket>();
  /** Connections accepted since start. */
  accepted = 0;

  constructor(readonly options: SimTcpWorkerOptions) {
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.onConnection(socket));
  }

  async listen(host = "127.0.0.1", port = 0): Promise<{ host: string; port: number; address: string }> {
    const address = await bindServer(this.server, host, port);
    return { host: (this.server.address() as AddressInfo).address, port: this.port, address };
  }

  get port(): number {
    const a = this.server.address();
    return a && typeof a !== "string" ? a.port : 0;
  }

  /** Stops listening and destroys every open connection. */
  close(): Promise<void> {
    for (const s of this.connections) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: Socket): void {
    this.accepted++;
    this.connections.add(socket);
    socket.on("close", () => this.connections.delete(socket));
    socket.on("error", () => socket.destroy());
    if (this.options.greet ?? true) socket.write(`${this.options.name}\n`);
    socket.pipe(socket);
  }
}
