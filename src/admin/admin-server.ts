/**
 * The admin listener (HAProxy's stats socket and Envoy's admin endpoint in one): health and readiness
 * probes, `/status`, Prometheus `/metrics`, the status page, and a small runtime API to drain,
 * undrain and reweight endpoints. POSTs need `Authorization: Bearer <token>` when `admin.token` is set.
 */
import { bindServer, serverAddress } from "../net/server-address.js";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { timingSafeEqual } from "node:crypto";
import type { EndpointSet } from "../balancer/endpoint-set.js";
import type { AdminConfig } from "../config/config-schema.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import type { AdminHost } from "./admin-host.js";
import { statusOf } from "./admin-status.js";
import { STATUS_PAGE_HTML } from "./status-page.js";

const MAX_BODY_BYTES = 64 * 1024;

/** What the runtime API can be asked to do; a reload is wired by the lifecycle work. */
export interface AdminActions {
  /** Re-reads the config; undefined while reload is not available (the route answers 501). */
  readonly reload?: (() => Promise<{ ok: true } | { ok: false; errors: string[] }>) | undefined;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class AdminServer {
  private readonly server: Server;
  private token: Buffer | undefined;

  constructor(
    private readonly config: AdminConfig,
    private readonly host: AdminHost,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly actions: AdminActions = {},
  ) {
    this.token = config.token !== "" ? Buffer.from(config.token) : undefined;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.fail(res, err));
    });
    this.server.on("clientError", (_err, socket) => socket.destroy());
  }

  /** A reload may change the token (not the address). */
  setToken(token: string): void {
    this.token = token !== "" ? Buffer.from(token) : undefined;
  }

  listen(host: string, port: number): Promise<string> {
    return bindServer(this.server, host, port, {}, (err) => this.log.error({ err }, "admin listener error"));
  }

  address(): string {
    return serverAddress(this.server);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const method = req.method ?? "GET";
    if (method === "GET" || method === "HEAD") {
      switch (path) {
        case "/":
          return send(res, 200, STATUS_PAGE_HTML, "text/html; charset=utf-8");
        case "/healthz":
          return sendJson(res, 200, { status: "ok" });
        case "/readyz": {
          const why = this.notReady();
          return sendJson(
            res,
            why ? 503 : 200,
            why ? { status: "not ready", reason: why } : { status: "ready" },
          );
        }
        case "/status":
          return sendJson(res, 200, await statusOf(this.host));
        case "/metrics":
          return send(res, 200, await this.host.metricsText(), this.metrics.registry.contentType);
        default:
          throw new HttpError(404, `no route ${path}`);
      }
    }
    if (method !== "POST") throw new HttpError(405, `method ${method} not allowed`);
    this.authorize(req);
    switch (path) {
      case "/endpoints/drain":
      case "/endpoints/undrain": {
        const { cluster, address } = endpointOf(await readJson(req));
        const set = this.endpointSet(cluster, address);
        const drain = path === "/endpoints/drain";
        if (set.setDrained(address, drain)) {
          this.host.clusters
            .get(cluster)
            ?.healthChanges.record(
              address,
              drain ? "drained" : "undrained",
              drain ? "drained by admin API" : "undrained by admin API",
              Date.now(),
            );
        }
        this.log.info({ cluster, endpoint: address }, drain ? "endpoint drained" : "endpoint undrained");
        return sendJson(res, 200, await statusOf(this.host));
      }
      case "/endpoints/weight": {
        const body = await readJson(req);
        const { cluster, address } = endpointOf(body);
        const weight = (body as { weight?: unknown }).weight;
        if (typeof weight !== "number" || !Number.isInteger(weight) || weight < 1 || weight > 1000) {
          throw new HttpError(400, "weight: expected an integer from 1 to 1000");
        }
        this.endpointSet(cluster, address).setWeight(address, weight);
        this.host.rememberWeight(cluster, address);
        this.log.info({ cluster, endpoint: address, weight }, "endpoint weight set");
        return sendJson(res, 200, await statusOf(this.host));
      }
      case "/reload": {
        if (!this.actions.reload) throw new HttpError(501, "reload needs Fulcrum started from a config file");
        const result = await this.actions.reload();
        if (!result.ok) return sendJson(res, 400, { errors: result.errors });
        return sendJson(res, 200, await statusOf(this.host));
      }
      default:
        throw new HttpError(404, `no route ${path}`);
    }
  }

  /** Why the process is not ready, or undefined when it is. */
  private notReady(): string | undefined {
    if (this.host.draining) return "draining";
    for (const c of this.host.clusters.values()) {
      if (!c.endpoints.endpoints.some((e) => e.health === "healthy"))
        return `cluster ${c.name} has no healthy endpoint`;
    }
    return undefined;
  }

  private authorize(req: IncomingMessage): void {
    if (!this.token) return;
    const header = req.headers.authorization ?? "";
    const given = Buffer.from(header.startsWith("Bearer ") ? header.slice(7) : "");
    if (given.length !== this.token.length || !timingSafeEqual(given, this.token)) {
      throw new HttpError(401, "missing or wrong bearer token");
    }
  }

  private endpointSet(cluster: string, address: string): EndpointSet {
    const c = this.host.clusters.get(cluster);
    if (!c) throw new HttpError(404, `no cluster named ${JSON.stringify(cluster)}`);
    if (!c.endpoints.get(address))
      throw new HttpError(404, `no endpoint ${JSON.stringify(address)} in cluster ${cluster}`);
    return c.endpoints;
  }

  private fail(res: ServerResponse, err: unknown): void {
    if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message });
    this.log.error({ err }, "admin request failed");
    sendJson(res, 500, { error: "internal error" });
  }
}

function endpointOf(body: unknown): { cluster: string; address: string } {
  const b = body as { cluster?: unknown; address?: unknown } | null;
  if (typeof b !== "object" || b === null || typeof b.cluster !== "string" || typeof b.address !== "string") {
    throw new HttpError(400, 'expected a JSON body {"cluster": "...", "address": "host:port"}');
  }
  return { cluster: b.cluster, address: b.address };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(400, "body too large");
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
  } catch {
    throw new HttpError(400, "body is not valid JSON");
  }
}

function send(res: ServerResponse, status: number, body: string, contentType: string): void {
  res.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, `${JSON.stringify(body)}\n`, "application/json");
}
