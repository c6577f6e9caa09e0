/**
 * Scrapes each endpoint's worker for its queue depth (`clusters[].load_metrics`, policy least_loaded):
 * every `interval`, `GET http://<endpoint host>:<port><path>` (Triton serves Prometheus text on port
 * 8002), sums every sample of `metric` over its label sets (Triton's
 * `nv_inference_pending_request_count{model,version}` is one series per model), or the weighted sum
 * of several metrics filtered by labels (`metrics`: Triton's pending count of one model, TRT-LLM's
 * waiting requests and KV-cache fill), and stores the sum and
 * the scrape time in the cluster's shared counters, where every worker thread's least_loaded picker
 * reads it. A failed scrape stores nothing: the last depth keeps aging and the cost discounts it.
 *
 * Runs in the main thread only (with worker threads too), like the health checker. Connections are
 * kept alive (one per endpoint), so scraping every second does not churn sockets on the workers.
 */
import { Agent, request, type IncomingMessage } from "node:http";
import type { Endpoint, EndpointSet } from "../balancer/endpoint-set.js";
import type { Logger } from "../log/logger.js";
import { RateLimitedWarning } from "../log/rate-limited-warning.js";

/** One metric of the load: its samples that carry `labels` are summed, times `weight`. */
export interface LoadSeries {
  readonly name: string;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
}

export interface LoadMetricsSettings {
  readonly port: number;
  readonly path: string;
  /** The load is the weighted sum of these (`load_metrics.metrics`, or `metric` alone with weight 1). */
  readonly series: readonly LoadSeries[];
  readonly intervalMs: number;
}

/** Scrape bodies larger than this are refused (a worker serving thousands of models stays well below). */
const MAX_BODY_BYTES = 16 * 1024 * 1024;
/** A scrape slower than this fails; never more than the interval, so scrapes do not pile up. */
const MAX_SCRAPE_MS = 5000;
const WARN_PERIOD_MS = 60_000;

type ScrapeResult =
  { readonly ok: true; readonly depth: number } | { readonly ok: false; readonly reason: string };

export class LoadMetricsScraper {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });
  private readonly running = new Set<string>();
  private readonly warning: RateLimitedWarning;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly endpoints: EndpointSet,
    private readonly settings: LoadMetricsSettings,
    /** Carries the cluster's name (`child({ component, cluster })`): lines name only the endpoint. */
    private readonly log: Logger,
  ) {
    this.warning = new RateLimitedWarning(log, WARN_PERIOD_MS);
  }

  /** Scrapes at once, then every interval, until `stop`. */
  start(): void {
    if (this.stopped || this.timer) return;
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.agent.destroy();
  }

  private tick(): void {
    if (this.stopped) return;
    for (const e of this.endpoints.endpoints) {
      if (!this.running.has(e.address)) void this.scrapeOne(e);
    }
    this.timer = setTimeout(() => this.tick(), this.settings.intervalMs);
    this.timer.unref();
  }

  private async scrapeOne(e: Endpoint): Promise<void> {
    this.running.add(e.address);
    const result = await this.fetch(e);
    this.running.delete(e.address);
    // The endpoint may have left (and its slot been reused) while the scrape ran.
    if (this.stopped || this.endpoints.get(e.address) !== e) return;
    if (!result.ok) {
      this.warning.warn(
        e.address,
        { endpoint: e.address, reason: result.reason },
        "load metrics scrape failed",
      );
      return;
    }
    this.endpoints.counters.setQueue(e.slot, result.depth, Date.now());
  }

  private fetch(e: Endpoint): Promise<ScrapeResult> {
    const { port, path, series, intervalMs } = this.settings;
    return new Promise((resolve) => {
      let settled = false;
      const finish = (r: ScrapeResult): void => {
        if (settled) return;
        settled = true;
        resolve(r);
      };
      let req: ReturnType<typeof request>;
      try {
        req = request(
          { host: e.host, port, path, agent: this.agent, headers: { accept: "text/plain" } },
          (res: IncomingMessage) => {
            if (res.statusCode !== 200) {
              res.resume();
              return finish({ ok: false, reason: `HTTP ${res.statusCode}` });
            }
            const chunks: Buffer[] = [];
            let size = 0;
            res.on("data", (chunk: Buffer) => {
              size += chunk.length;
              if (size > MAX_BODY_BYTES) {
                req.destroy();
                return finish({ ok: false, reason: "response too large" });
              }
              chunks.push(chunk);
            });
            res.on("end", () => {
              const depth = sumPromSeries(Buffer.concat(chunks).toString("utf8"), series);
              const names = series.map((m) => m.name).join(", ");
              finish(depth === undefined ? { ok: false, reason: `no ${names} sample` } : { ok: true, depth });
            });
            res.on("error", (err) => finish({ ok: false, reason: err.message }));
          },
        );
      } catch (err) {
        return finish({ ok: false, reason: err instanceof Error ? err.message : String(err) });
      }
      req.setTimeout(Math.min(intervalMs, MAX_SCRAPE_MS), () => {
        finish({ ok: false, reason: "timeout" });
        req.destroy();
      });
      req.on("error", (err: NodeJS.ErrnoException) => finish({ ok: false, reason: err.code ?? err.message }));
      req.end();
    });
  }
}

/**
 * The sum of every finite sample of `metric` in a Prometheus text exposition (format 0.0.4: `name`,
 * optional `{labels}` whose quoted values may hold `}`, `,` and escapes, a value, an optional
 * timestamp); undefined when no sample of `metric` is present.
 */
export function sumPromMetric(text: string, metric: string): number | undefined {
  return sumPromSeries(text, [{ name: metric, weight: 1, labels: {} }]);
}

/**
 * The weighted sum over `series` of their matching samples (a sample matches when it carries every
 * label of the series with its value); undefined when no sample of any of them is present, so a
 * worker that exports only some of the metrics (TRT-LLM's next to Triton's) still has a load.
 */
export function sumPromSeries(text: string, series: readonly LoadSeries[]): number | undefined {
  let sum: number | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    for (const s of series) {
      if (!line.startsWith(s.name)) continue;
      let i = s.name.length;
      const next = line[i];
      let labels: Map<string, string> | undefined;
      if (next === "{") {
        const start = i;
        i = skipLabels(line, i);
        if (i < 0) continue;
        if (hasFilter(s)) labels = parseLabels(line.slice(start + 1, i - 1));
      } else if (next !== " " && next !== "\t") {
        continue; // a longer name that starts with this one
      }
      if (hasFilter(s) && !matches(s.labels, labels)) continue;
      const value = parseSampleValue(line.slice(i).trim().split(/\s+/)[0] ?? "");
      if (value === undefined) continue;
      sum = (sum ?? 0) + value * s.weight;
    }
  }
  return sum;
}

function hasFilter(s: LoadSeries): boolean {
  return Object.keys(s.labels).length > 0;
}

function matches(filter: Readonly<Record<string, string>>, labels: Map<string, string> | undefined): boolean {
  for (const [k, v] of Object.entries(filter)) if (labels?.get(k) !== v) return false;
  return true;
}

/** `a="x",b="y\"z"` (between the braces) → its labels, escapes (\\, \", \n) undone. */
function parseLabels(body: string): Map<string, string> {
  const labels = new Map<string, string>();
  let i = 0;
  while (i < body.length) {
    while (body[i] === " " || body[i] === ",") i++;
    const eq = body.indexOf("=", i);
    if (eq < 0 || body[eq + 1] !== '"') break;
    const key = body.slice(i, eq).trim();
    let value = "";
    let j = eq + 2;
    for (; j < body.length && body[j] !== '"'; j++) {
      if (body[j] === "\\" && j + 1 < body.length) {
        j++;
        value += body[j] === "n" ? "\n" : body[j];
      } else value += body[j];
    }
    labels.set(key, value);
    i = j + 1;
  }
  return labels;
}

/** Index just past the `}` closing the label set that opens at `start`, or -1 if it never closes. */
function skipLabels(line: string, start: number): number {
  let quoted = false;
  for (let i = start + 1; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === "\\") i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
    } else if (c === "}") {
      return i + 1;
    }
  }
  return -1;
}

function parseSampleValue(token: string): number | undefined {
  if (token === "") return undefined;
  const v = Number(token);
  return Number.isFinite(v) ? v : undefined;
}
