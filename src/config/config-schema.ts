/**
 * The config contract of DESIGN.md as one zod schema: the single source of validation, defaults, the
 * TypeScript types and `fulcrum.schema.json`. Durations and sizes stay strings here (so the JSON
 * Schema can express them); `config-units.ts` converts them where they are used.
 */
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
/** host:port or [v6]:port; the port range is checked separately. */
const ADDRESS_RE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/;
const AFFINITY_KEY_RE = /^(source_ip|triton_sequence|header:[A-Za-z0-9!#$%&'*+.^_`|~-]+)$/;

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

function address(minPort: number) {
  return z
    .string({ error: msg("host:port") })
    .regex(ADDRESS_RE, { error: msg("host:port"), abort: true })
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

const listenerTls = object({
  cert: text("a file path"),
  key: text("a file path"),
  client_ca: text("a file path").optional(),
});

const listener = object({
  name: name(),
  protocol: oneOf(["grpc", "tcp"]),
  listen: address(0),
  cluster: name(),
  max_connections: int(1, Number.MAX_SAFE_INTEGER, 10000),
  idle_timeout: durationOrZero("10m"),
  handshake_timeout: duration("10s"),
  proxy_protocol: oneOf(["none", "v1", "v2"]).default("none"),
  engine: oneOf(["http2", "frames"]).default("http2"),
  max_header_list_size: size("16KiB"),
  tls: listenerTls.optional(),
});

const endpoint = object({
  address: address(1),
  weight: int(1, 1000, 1),
});

export const healthCheckSchema = object({
  type: oneOf(HEALTH_CHECK_TYPES),
  service: text().default(""),
  interval: duration("2s"),
  timeout: duration("1s"),
  healthy_threshold: int(1, 1000, 2),
  unhealthy_threshold: int(1, 1000, 3),
});

const outlierDetection = object({
  consecutive_failures: int(0, 1_000_000, 5),
  base_ejection_time: duration("30s"),
  max_ejection_percent: int(0, 100, 10),
});

const affinity = object({
  key: z
    .string({ error: msg("source_ip | header:<name> | triton_sequence") })
    .regex(AFFINITY_KEY_RE, { error: msg("source_ip | header:<name> | triton_sequence") }),
  balance_factor: z
    .number({ error: msg("0 or a number ≥ 1") })
    .refine((v) => v === 0 || v >= 1, { error: msg("0 or a number ≥ 1") })
    .default(0),
  sequence_idle_timeout: duration("60s"),
});

const upstreamTls = object({
  ca: text("a file path").optional(),
  server_name: text().optional(),
  insecure_skip_verify: bool(false),
});

const model = object({
  name: name(),
  version: text().default(""),
});

const loadMetrics = object({
  port: int(1, 65535, 8002),
  path: text().default("/metrics"),
  metric: text().default("nv_inference_pending_request_count"),
  interval: duration("1s"),
});

const cluster = object({
  name: name(),
  policy: oneOf(POLICIES).default("least_connections"),
  affinity: affinity.optional(),
  connect_timeout: duration("2s"),
  connect_attempts: int(1, 100, 3),
  discovery: oneOf(["static", "dns"]).default("static"),
  dns_refresh: duration("30s"),
  dns_resolvers: list(address(1)).default([]),
  tls: upstreamTls.optional(),
  models: list(model).default([]),
  peek_max_bytes: size("64KiB"),
  load_metrics: loadMetrics.optional(),
  explain: bool(false),
  endpoints: list(endpoint).min(1, { error: "at least one endpoint is required" }),
  health_check: healthCheckSchema.optional(),
  outlier_detection: outlierDetection.prefault({}),
});

const admin = object({
  listen: address(0).default("127.0.0.1:9901"),
  token: text().default(""),
});

export const configSchema = object({
  admin: admin.optional(),
  log: object({ level: oneOf(LOG_LEVELS).default("info") }).prefault({}),
  threads: z
    .union([z.number().int().min(1), z.literal("auto")], { error: msg('a whole number ≥ 1 or "auto"') })
    .default(1),
  drain_timeout: duration("30s"),
  listeners: list(listener).min(1, { error: "at least one listener is required" }),
  clusters: list(cluster).min(1, { error: "at least one cluster is required" }),
});

export type FulcrumConfig = z.output<typeof configSchema>;
export type ListenerConfig = FulcrumConfig["listeners"][number];
export type ClusterConfig = FulcrumConfig["clusters"][number];
export type EndpointConfig = ClusterConfig["endpoints"][number];
export type HealthCheckConfig = NonNullable<ClusterConfig["health_check"]>;
export type AffinityConfig = NonNullable<ClusterConfig["affinity"]>;
export type AdminConfig = NonNullable<FulcrumConfig["admin"]>;
