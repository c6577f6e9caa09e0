/**
 * A Prometheus text endpoint for a simulated worker (Triton serves its metrics on HTTP port 8002 at
 * `/metrics`): `GET /metrics` answers the text that `render()` returns at that moment; anything else
 * is 404. Counts scrapes so tests can see that Fulcrum's load-metrics scraper came by.
 */
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { bindServer } from "../net/server-address.js";

export class SimMetricsEndpoint {
  /** `GET /metrics` requests answered. */
  scrapes = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly render: () => string) {
    this.server = createServer((req, res: ServerResponse) => {
      if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
        res.writeHead(404).end();
        return;
      }
      this.scrapes++;
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(this.render());
    });
    this.server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  async listen(host: string, port: number): Promise<{ port: number; address: string }> {
    const address = await bindServer(this.server, host, port);
    return { port: (this.server.address() as AddressInfo).port, address };
  }

  /** Stops listening and closes every connection (scrapers keep theirs alive). */
  close(): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
