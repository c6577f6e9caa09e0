/**
 * The config contract of docs/architecture.md as one zod schema: the single source of validation, defaults, the
 * TypeScript types and `fulcrum.schema.json`. Durations and sizes stay strings here (so the JSON
 * Schema can express them); `config-units.ts` converts them where they are used.
 */
import { isIPv6 } from "node:net";
import { z } from "zod";

/** How a value appears in an error message. */
export function shown(input: unknown): string {
  if (input === undefined) return "nothing";
  if (typeof input === "string") return JSON.stringify(input);
  if (input === null) return "null";
  if (Array.isArray(input)) return "a list";
  if (typeof input === "object") return "a mapping";
  return String(input); // eslint-disable-line @typescript-eslint/no-base-to-string -- objects returned above
}

type Issue = { input?: unknown };
const msg =
  (expected: string) =>
  (iss: Issue): string =>
    iss.input === undefined ? "required" : `expected ${expected}, got ${shown(iss.input)}`;

const DURATION_RE = /^\d+(ms|s|m|h)$/;
const DURATION_OR_ZERO_RE = /^(0|\d+(ms|s|m|h))$/;
const SIZE_RE = /^\d+(B|KiB|MiB)$/;
/** host:port or [v6]:port (a zone like `%eth0` allowed); the port range is checked separately. */
const ADDRESS_RE = /^(\[[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?\]|[A-Za-z0-9_.-]+):\d{1,5}$/;
const AFFINITY_KEY_RE = /^(source_ip|triton_sequence|prompt_prefix|header:[A-Za-z0-9!#$%&'*+.^_`|~-]+)$/;

function duration(defaultValue: string) {
  return z
    .string({ error: msg('a duration like "2s"') })
    .regex(DURATION_RE, { error: msg('a duration like "2s"') })
    .default(defaultValue);
}

/** A duration where 0 means "never" (YAML's bare 0 or "0"). */
function durationOrZero(defaultValue: string) {
  return z
    .union(
      [z.string().regex(DURATION_OR_ZERO_RE, { error: msg('a duration like "2s" or 0') }), z.literal(0)],
      { error: msg('a duration like "2s" or 0') },
    )
    .default(defaultValue);
}

function size(defaultValue: string) {
  return z
    .string({ error: msg('a size like "64KiB"') })
    .regex(SIZE_RE, { error: msg('a size like "64KiB"') })
    .default(defaultValue);
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(":") + 1));
}

/** A bracketed host must be an IPv6 address: `[1.2.3.4]:80` and `[:::]:80` are not addresses. */
function bracketedHostIsIPv6(address: string): boolean {
  if (!address.startsWith("[")) return true;
  return isIPv6(address.slice(1, address.lastIndexOf("]")));
}

function address(minPort: number) {
  return z
    .string({ error: msg("host:port") })
    .regex(ADDRESS_RE, { error: msg("host:port"), abort: true })
    .refine(bracketedHostIsIPv6, { error: msg("host:port"), abort: true })
    .refine((a) => portOf(a) >= minPort && portOf(a) <= 65535, {
      error: (iss) => `port must be ${minPort}–65535, got ${portOf(String(iss.input))}`,
    });
}

function int(min: number, max: number, defaultValue: number) {
  const text = max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`;
  return z
    .number({ error: msg(text) })
    .int({ error: msg(text) })
    .min(min, { error: msg(text) })
    .max(max, { error: msg(text) })
    .default(defaultValue);
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: msg(`one of ${values.join(" | ")}`) });
}

function text(what = "a string") {
  return z.string({ error: msg(what) });
}

/** A secret string: a wrong value is reported without showing it (it may be the secret itself). */
function secret() {
  return z.string({
    error: (iss: Issue): string =>
      iss.input === undefined ? "required" : "expected a string (value not shown)",
  });
}

function name() {
  return z.string({ error: msg("a name") }).min(1, { error: "must not be empty" });
}

function object<S extends z.core.$ZodLooseShape>(shape: S) {
  return z.strictObject(shape, { error: msg("a mapping") });
}

function list<T extends z.ZodType>(item: T) {
  return z.array(item, { error: msg("a list") });
}

function bool(defaultValue: boolean) {
  return z.boolean({ error: msg("true or false") }).default(defaultValue);
}

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error"] as const;
export const POLICIES = [
  "round_robin",
  "weighted_round_robin",
  "least_connections",
  "p2c",
  "random",
  "ip_hash",
  "least_loaded",
] as const;
export const HEALTH_CHECK_TYPES = ["tcp", "grpc", "none", "triton", "torchserve"] as const;

// Descriptions end up in fulcrum.schema.json, where editors show them on hover.

const listenerTls = object({
  cert: text("a file path").describe("Certificate chain (PEM), relative to the config file"),
  key: text("a file path").describe("Private key (PEM), relative to the config file; never shown"),
  client_ca: text("a file path")
    .optional()
    .describe(
      "CA bundle (PEM) that client certificates must chain to (mTLS); absent = no client certificate",
    ),
});

const accessLog = object({
  enabled: bool(false).describe('true: write access log lines (msg "access") on stdout'),
  sample: z
    .number({ error: msg("a number from 0 to 1") })
    .min(0, { error: msg("a number from 0 to 1") })
    .max(1, { error: msg("a number from 0 to 1") })
    .default(1)
    .describe("Fraction of streams / connections logged, 0 to 1"),
});

const listener = object({
  name: name().describe("Unique listener name"),
  protocol: oneOf(["grpc", "tcp"]).describe("tcp: byte stream per connection; grpc: balanced per stream"),
  listen: address(0).describe('host:port or [v6]:port to bind; port 0 = any free port, e.g. "0.0.0.0:8001"'),
  cluster: name().describe("Name of the cluster that serves this listener"),
  max_connections: int(1, Number.MAX_SAFE_INTEGER, 10000).describe(
    "Beyond it a new connection is closed at once (grpc: after GOAWAY)",
  ),
  idle_timeout: durationOrZero("10m").describe("tcp: no byte either way; grpc: no active stream; 0 = never"),
  handshake_timeout: duration("10s").describe("TLS handshake / HTTP/2 preface must complete within it"),
  proxy_protocol: oneOf(["none", "v1", "v2"])
    .default("none")
    .describe("tcp only: PROXY protocol header written to the upstream connection"),
  engine: oneOf(["http2", "frames"])
    .default("frames")
    .describe(
      "grpc only: frames (Fulcrum's own HTTP/2, the default) | http2 (node:http2: the conservative fallback)",
    ),
  max_header_list_size: size("16KiB").describe("grpc only; the same limit is used towards upstream"),
  tls: listenerTls.optional().describe("grpc only: serve TLS; absent = cleartext (h2c)"),
  access_log: accessLog.prefault({}).describe("One JSON line per gRPC stream or TCP connection when it ends"),
  stream_balancing: oneOf(["per_stream", "per_request"])
    .default("per_stream")
    .describe(
      "grpc only: per_request = each request of a Triton ModelStreamInfer stream is balanced on its own (a sequence's requests stay together, in order)",
    ),
});

const endpoint = object({
  address: address(1).describe("host:port or [v6]:port of the worker"),
  weight: int(1, 1000, 1).describe("Integer 1–1000; ignored by round_robin"),
  max_active: int(0, 1_000_000, 0).describe(
    "Most streams/connections on this endpoint at once; 0 = the cluster's max_active_per_endpoint",
  ),
  name: text()
    .min(1, { error: "expected a non-empty name" })
    .optional()
    .describe("Shown next to the address in /status and on the status page; unique within the cluster"),
});

export const healthCheckSchema = object({
  type: oneOf(HEALTH_CHECK_TYPES).describe(
    "Prober: tcp connect, grpc.health.v1 Check, Triton or TorchServe readiness, or none",
  ),
  service: text().default("").describe('grpc.health.v1 service name; "" = the whole server'),
  interval: duration("2s").describe("Time between probes (jitter at most 10 %)"),
  timeout: duration("1s").describe("A probe without an answer by then fails"),
  healthy_threshold: int(1, 1000, 2).describe("Consecutive passes that make an unhealthy endpoint healthy"),
  unhealthy_threshold: int(1, 1000, 3).describe(
    "Consecutive failures that make a healthy endpoint unhealthy",
  ),
  watch: bool(false).describe(
    "grpc only: true = one grpc.health.v1 Watch stream per endpoint instead of Check polling; each update, and the last status again every interval while the stream is quiet, is one probe result (Check if unimplemented)",
  ),
});

const outlierDetection = object({
  consecutive_failures: int(0, 1_000_000, 5).describe(
    "Data-path failures in a row that eject an endpoint; 0 = never eject",
  ),
  base_ejection_time: duration("30s").describe("Ejection time × number of ejections so far"),
  max_ejection_percent: int(0, 100, 10).describe(
    "Most of the cluster ejected at once, but at least one endpoint may always be ejected",
  ),
});

const affinity = object({
  key: z
    .string({ error: msg("source_ip | header:<name> | triton_sequence | prompt_prefix") })
    .regex(AFFINITY_KEY_RE, { error: msg("source_ip | header:<name> | triton_sequence | prompt_prefix") })
    .describe(
      "What sticks: source_ip | header:<name> (grpc) | triton_sequence (grpc) | prompt_prefix (grpc, Triton: the prompt's leading blocks)",
    ),
  balance_factor: z
    .number({ error: msg("0 or a number ≥ 1") })
    .refine((v) => v === 0 || v >= 1, { error: msg("0 or a number ≥ 1") })
    .default(0)
    .describe("0 = pure consistent hash, or ≥ 1 (e.g. 1.25) = bounded load"),
  sequence_idle_timeout: duration("60s").describe(
    "triton_sequence only: a pin with no request for this long ends",
  ),
  input: text()
    .default("text_input")
    .describe("prompt_prefix only: the BYTES input of ModelInfer / ModelStreamInfer that holds the prompt"),
  block_bytes: int(1, 65_536, 64).describe("prompt_prefix only: bytes per hashed block of the prompt"),
  max_blocks: int(1, 65_536, 256).describe(
    "prompt_prefix only: leading blocks of a prompt that count (and are read, within peek_max_bytes)",
  ),
  index_blocks: int(1, 10_000_000, 65_536).describe(
    "prompt_prefix only: block hashes remembered per endpoint and thread (LRU; about 80 bytes each)",
  ),
  min_match: z
    .number({ error: msg("a number from 0 to 1") })
    .min(0, { error: msg("a number from 0 to 1") })
    .max(1, { error: msg("a number from 0 to 1") })
    .default(0.5)
    .describe(
      "prompt_prefix only: fraction of a prompt's blocks the best match must cover to decide; below it the least active endpoint takes it",
    ),
  balance_slack: int(0, 1_000_000, 2).describe(
    "prompt_prefix only: streams an endpoint may hold beyond the balance_factor limits before its prefix match is handed to another",
  ),
});

const upstreamTls = object({
  ca: text("a file path")
    .optional()
    .describe("CA bundle (PEM) for the workers' certificates; absent = system CAs"),
  server_name: text().optional().describe("SNI and the name the certificate must carry"),
  insecure_skip_verify: bool(false).describe("Accept any worker certificate (tests only)"),
});

const model = object({
  name: name().describe("Model name as the workers know it"),
  version: text().default("").describe('"" = any version'),
});

const loadSeries = object({
  name: name().describe("Metric name (every sample of it that matches `labels` is summed)"),
  weight: z
    .number({ error: msg("a number ≥ 0") })
    .min(0, { error: msg("a number ≥ 0") })
    .default(1)
    .describe("Multiplies the metric's sum in the endpoint's load"),
  labels: z
    .record(z.string(), z.string({ error: msg("a string") }), { error: msg("a mapping of label to value") })
    .default({})
    .describe("Only samples with these label values count (e.g. { model: llama })"),
});

const loadMetrics = object({
  port: int(1, 65535, 8002).describe("Metrics port on each endpoint's host"),
  path: text().default("/metrics").describe("Prometheus text endpoint"),
  metric: text().default("nv_inference_pending_request_count").describe("Gauge read as the endpoint's load"),
  metrics: list(loadSeries)
    .optional()
    .describe(
      "Instead of `metric`: several metrics, each weighted and filtered by labels; the load is their weighted sum",
    ),
  interval: duration("1s").describe("Time between scrapes (e.g. 50ms for a fast-moving fleet)"),
  stale_after: durationOrZero("0").describe(
    "0 = an old scrape fades out; else an endpoint without a successful scrape for this long counts as saturated",
  ),
});

/** A header name (lower case: HTTP/2 field names are); "" = not used. */
const HEADER_NAME_RE = /^([a-z0-9!#$%&'*+.^_`|~-]+)?$/;

const queue = object({
  max_size: int(0, 1_000_000, 0).describe(
    "Calls that may wait for a free slot (with caps); 0 = no queue: a call finding no free slot is shed at once",
  ),
  timeout: duration("1s").describe("A call waiting longer is shed (RESOURCE_EXHAUSTED, queue timeout)"),
  priority_header: z
    .string({ error: msg("a lower-case header name") })
    .regex(HEADER_NAME_RE, { error: msg("a lower-case header name") })
    .default("")
    .describe(
      'Request header holding an integer priority (lower is served first, absent = 0, negative = sheddable: never queued); "" = none',
    ),
  fairness_header: z
    .string({ error: msg("a lower-case header name") })
    .regex(HEADER_NAME_RE, { error: msg("a lower-case header name") })
    .default("")
    .describe('Request header naming a flow: within a priority, flows take turns; "" = one flow'),
});

const cluster = object({
  name: name().describe("Unique cluster name"),
  policy: oneOf(POLICIES)
    .default("least_connections")
    .describe("How an endpoint is picked when affinity does not decide"),
  affinity: affinity
    .optional()
    .describe("A stream/connection carrying the key sticks; others use the policy"),
  connect_timeout: duration("2s").describe("TCP connect (+ TLS + upstream SETTINGS for grpc)"),
  connect_attempts: int(1, 100, 3).describe("Total tries on distinct endpoints before giving up"),
  retry_on: list(oneOf(["unavailable", "resource_exhausted", "internal"]))
    .default([])
    .describe(
      "gRPC: statuses of a trailers-only answer that are retried on another endpoint (before any response byte, within the 64 KiB retry buffer and connect_attempts)",
    ),
  retry_budget_percent: int(0, 100, 20).describe(
    "Retries running at once: at most this % of the cluster's active streams (beyond it the status passes through)",
  ),
  retry_budget_min_concurrency: int(0, 1_000_000, 3).describe(
    "Retries always allowed at once, whatever the percentage gives",
  ),
  slow_start: durationOrZero("0").describe(
    "An endpoint added, undrained, healthy again or back from ejection ramps its weight and cap from 10 % to 100 % over this; 0 = off",
  ),
  max_active_per_endpoint: int(0, 1_000_000, 0).describe(
    "Cap on streams/connections per endpoint (endpoints[].max_active overrides); 0 = no cap; an endpoint at its cap is not picked",
  ),
  queue: queue
    .prefault({})
    .describe(
      "gRPC: where calls wait when every endpoint is at its cap; bound to an endpoint only when a slot frees",
    ),
  discovery: oneOf(["static", "dns"])
    .default("static")
    .describe("static | dns: endpoint names re-resolved every dns_refresh"),
  dns_refresh: duration("30s").describe("How often dns discovery re-resolves"),
  dns_resolvers: list(address(1)).default([]).describe('e.g. ["127.0.0.1:5353"]; empty = system resolver'),
  tls: upstreamTls.optional().describe("TLS towards the workers; absent = cleartext"),
  models: list(model).default([]).describe("Models the workers serve (inference awareness)"),
  peek_max_bytes: size("64KiB").describe(
    "With models or triton_sequence: most bytes read of a first message to route it",
  ),
  load_metrics: loadMetrics.optional().describe("least_loaded only: load scraped from each endpoint's host"),
  explain: bool(false).describe("true: a fulcrum-route trailer on every response"),
  endpoints: list(endpoint)
    .min(1, { error: "at least one endpoint is required" })
    .describe("The workers, at least one"),
  health_check: healthCheckSchema
    .optional()
    .describe("Active probes; absent = tcp for clusters of tcp listeners, none otherwise"),
  outlier_detection: outlierDetection
    .prefault({})
    .describe("Passive ejection from data-path results; on by default"),
});

const admin = object({
  listen: address(0)
    .default("127.0.0.1:9901")
    .describe("/metrics /healthz /readyz /status, runtime API, status page"),
  token: secret().default("").describe('When set, POSTs need "Authorization: Bearer <token>"; never shown'),
});

const threadsMsg = msg('a whole number ≥ 1 or "auto"');

export const configSchema = object({
  admin: admin.optional().describe("Absent = no admin listener"),
  log: object({
    level: oneOf(LOG_LEVELS).default("info").describe("Overridden by --log-level"),
  }).prefault({}),
  threads: z
    .union([z.number().int({ error: threadsMsg }).min(1, { error: threadsMsg }), z.literal("auto")], {
      error: threadsMsg,
    })
    .default(1)
    .describe('Worker threads serving listeners (reusePort); "auto" = one per core'),
  drain_timeout: duration("30s").describe("SIGTERM: how long in-flight work may finish"),
  listeners: list(listener)
    .min(1, { error: "at least one listener is required" })
    .describe("Where clients connect"),
  clusters: list(cluster)
    .min(1, { error: "at least one cluster is required" })
    .describe("Sets of endpoints with a policy"),
});

export type FulcrumConfig = z.output<typeof configSchema>;
export type ListenerConfig = FulcrumConfig["listeners"][number];
export type ClusterConfig = FulcrumConfig["clusters"][number];
export type EndpointConfig = ClusterConfig["endpoints"][number];
export type HealthCheckConfig = NonNullable<ClusterConfig["health_check"]>;
export type AffinityConfig = NonNullable<ClusterConfig["affinity"]>;
export type AdminConfig = NonNullable<FulcrumConfig["admin"]>;
