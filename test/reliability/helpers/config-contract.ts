/**
 * docs/architecture.md's config contract as a table for the config-fault tests: what each key accepts, by path
 * pattern, written out independently of the zod schema that implements it, so that the schema is
 * what is tested. Walking a config with it gives every place a mutation can hit.
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Path = readonly (string | number)[];

/**
 * What a key accepts. `name`: a non-empty string (`unique` among its list's entries); `ref`: the name
 * of a cluster; `duration` `orZero`: 0 also means "never"; `address` `minPort`: 0 where a listener may
 * ask for any free port; `factor`: balance_factor (0, or a number ≥ 1); `fraction`: a number from 0 to 1 (access_log.sample); `threads`: an integer ≥ 1 or
 * "auto"; `required` keys have no default.
 */
export type Field =
  | { kind: "mapping"; required?: boolean }
  | { kind: "list"; required?: boolean; nonEmpty?: boolean }
  | { kind: "string"; required?: boolean }
  | { kind: "name"; required?: boolean; unique?: boolean }
  | { kind: "ref"; required: true }
  | { kind: "duration"; orZero: boolean }
  | { kind: "size" }
  | { kind: "address"; minPort: 0 | 1; required?: boolean; unique?: boolean }
  | { kind: "int"; min: number; max: number }
  | { kind: "factor" }
  | { kind: "fraction" }
  | { kind: "threads" }
  | { kind: "bool" }
  | { kind: "enum"; values: readonly string[]; required?: boolean }
  | { kind: "affinity_key"; required: true };

export const NO_MAX = Number.MAX_SAFE_INTEGER;
const duration = (orZero = false): Field => ({ kind: "duration", orZero });
const int = (min: number, max = NO_MAX): Field => ({ kind: "int", min, max });
const mapping: Field = { kind: "mapping" };
const text: Field = { kind: "string" };

/** The config contract, by path pattern (`[]` stands for any list index). */
const FIELDS: Readonly<Record<string, Field>> = {
  admin: mapping,
  "admin.listen": { kind: "address", minPort: 0 },
  "admin.token": text,
  log: mapping,
  "log.level": { kind: "enum", values: ["trace", "debug", "info", "warn", "error"] },
  threads: { kind: "threads" },
  drain_timeout: duration(),
  listeners: { kind: "list", required: true, nonEmpty: true },
  "listeners[]": mapping,
  "listeners[].name": { kind: "name", required: true, unique: true },
  "listeners[].protocol": { kind: "enum", values: ["grpc", "tcp"], required: true },
  "listeners[].listen": { kind: "address", minPort: 0, required: true },
  "listeners[].cluster": { kind: "ref", required: true },
  "listeners[].max_connections": int(1),
  "listeners[].idle_timeout": duration(true),
  "listeners[].handshake_timeout": duration(),
  "listeners[].proxy_protocol": { kind: "enum", values: ["none", "v1", "v2"] },
  "listeners[].engine": { kind: "enum", values: ["http2", "frames"] },
  "listeners[].max_header_list_size": { kind: "size" },
  "listeners[].access_log": mapping,
  "listeners[].access_log.enabled": { kind: "bool" },
  "listeners[].access_log.sample": { kind: "fraction" },
  "listeners[].tls": mapping,
  "listeners[].tls.cert": { kind: "string", required: true },
  "listeners[].tls.key": { kind: "string", required: true },
  "listeners[].tls.client_ca": text,
  clusters: { kind: "list", required: true, nonEmpty: true },
  "clusters[]": mapping,
  "clusters[].name": { kind: "name", required: true, unique: true },
  "clusters[].policy": {
    kind: "enum",
    values: [
      "round_robin",
      "weighted_round_robin",
      "least_connections",
      "p2c",
      "random",
      "ip_hash",
      "least_loaded",
    ],
  },
  "clusters[].affinity": mapping,
  "clusters[].affinity.key": { kind: "affinity_key", required: true },
  "clusters[].affinity.balance_factor": { kind: "factor" },
  "clusters[].connect_timeout": duration(),
  "clusters[].connect_attempts": int(1, 100),
  "clusters[].discovery": { kind: "enum", values: ["static", "dns"] },
  "clusters[].dns_refresh": duration(),
  "clusters[].dns_resolvers": { kind: "list" },
  "clusters[].dns_resolvers[]": { kind: "address", minPort: 1 },
  "clusters[].tls": mapping,
  "clusters[].tls.ca": text,
  "clusters[].tls.server_name": text,
  "clusters[].tls.insecure_skip_verify": { kind: "bool" },
  "clusters[].models": { kind: "list" },
  "clusters[].models[]": mapping,
  "clusters[].models[].name": { kind: "name", required: true },
  "clusters[].models[].version": text,
  "clusters[].peek_max_bytes": { kind: "size" },
  "clusters[].explain": { kind: "bool" },
  "clusters[].endpoints": { kind: "list", required: true, nonEmpty: true },
  "clusters[].endpoints[]": mapping,
  "clusters[].endpoints[].address": { kind: "address", minPort: 1, required: true, unique: true },
  "clusters[].endpoints[].weight": int(1, 1000),
  "clusters[].endpoints[].name": { kind: "name", unique: true },
  "clusters[].health_check": mapping,
  "clusters[].health_check.type": {
    kind: "enum",
    values: ["tcp", "grpc", "none", "triton", "torchserve"],
    required: true,
  },
  "clusters[].health_check.service": text,
  "clusters[].health_check.interval": duration(),
  "clusters[].health_check.timeout": duration(),
  "clusters[].health_check.healthy_threshold": int(1, 1000),
  "clusters[].health_check.unhealthy_threshold": int(1, 1000),
  "clusters[].health_check.watch": { kind: "bool" },
  "clusters[].outlier_detection": mapping,
  "clusters[].outlier_detection.consecutive_failures": int(0, 1_000_000),
  "clusters[].outlier_detection.base_ejection_time": duration(),
  "clusters[].outlier_detection.max_ejection_percent": int(0, 100),
};

/** Every key the contract knows anywhere: an "unknown key" must be none of these. */
export const KNOWN_KEYS = new Set([
  ...Object.keys(FIELDS).flatMap((p) => p.split(/\.|\[\]/).filter(Boolean)),
  "load_metrics",
  "port",
  "path",
  "metric",
  "metrics",
  "interval",
  "stale_after",
  "sequence_idle_timeout",
  "input",
  "block_bytes",
  "max_blocks",
  "index_blocks",
]);

/** `["clusters", 0, "name"]` → `clusters[0].name` (docs/architecture.md's path form). */
export function dotted(path: Path): string {
  let out = "";
  for (const part of path) out += typeof part === "number" ? `[${part}]` : out === "" ? part : `.${part}`;
  return out;
}

/** A JSON value as text: strings as they are, anything else as JSON. */
export function asText(v: Json | undefined): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

export function patternOf(path: Path): string {
  return dotted(path.map((p) => (typeof p === "number" ? -1 : p))).replaceAll("[-1]", "[]");
}

export interface Place {
  readonly path: Path;
  readonly field: Field;
  readonly value: Json;
}

/** Every place of `config` with what the contract says about it; throws on a key the table lacks. */
export function placesOf(config: Json): Place[] {
  const out: Place[] = [];
  const visit = (value: Json, path: Path): void => {
    if (path.length > 0) {
      const field = FIELDS[patternOf(path)];
      if (!field) throw new Error(`the contract table has no ${patternOf(path)}`);
      out.push({ path, field, value });
    }
    if (Array.isArray(value)) value.forEach((v, i) => visit(v, [...path, i]));
    else if (value !== null && typeof value === "object")
      for (const [k, v] of Object.entries(value)) visit(v, [...path, k]);
  };
  visit(config, []);
  return out;
}

export function getAt(config: Json, path: Path): Json {
  let node: Json = config;
  for (const part of path) node = (node as Record<string | number, Json>)[part] as Json;
  return node;
}

/** A deep copy of `config` with `edit` applied to the parent of `path`. */
function edited(
  config: Json,
  path: Path,
  edit: (parent: Record<string | number, Json>, key: string | number) => void,
): Json {
  const copy = structuredClone(config);
  const parent = getAt(copy, path.slice(0, -1)) as Record<string | number, Json>;
  edit(parent, path[path.length - 1] as string | number);
  return copy;
}

export function setAt(config: Json, path: Path, value: Json): Json {
  return edited(config, path, (parent, key) => (parent[key] = value));
}

export function deleteAt(config: Json, path: Path): Json {
  return edited(config, path, (parent, key) => delete parent[key]);
}
