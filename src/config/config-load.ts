/**
 * Loads a config: YAML → schema validation → cross-reference checks → resolution (defaults that
 * depend on other keys, relative file paths) → a deeply frozen `FulcrumConfig`. Every problem is
 * collected and thrown together as one ConfigError, in the order the keys appear in the file.
 */
import { readFileSync } from "node:fs";
import { BlockList, isIPv4, isIPv6 } from "node:net";
import { dirname, resolve } from "node:path";
import { parseDocument, type Document } from "yaml";
import type { z } from "zod";
import { ConfigError, formatPath, type ConfigIssue } from "./config-error.js";
import { fileIssues, namedFiles } from "./config-files.js";
import { configSchema, healthCheckSchema, type ClusterConfig, type FulcrumConfig } from "./config-schema.js";
import { closestKey, keysAt } from "./config-suggest.js";

export interface ParseOptions {
  /** Directory that relative file paths in the config are resolved against. */
  readonly baseDir: string;
  /**
   * Read and parse every file the config names (TLS certificates, keys, CAs) and report each
   * problem by path, with the others. `loadConfigFile` does (so `check`, `run` and reload do).
   */
  readonly readFiles?: boolean;
}

export function loadConfigFile(file: string): FulcrumConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError([
      {
        path: "(file)",
        message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      },
    ]);
  }
  return parseConfig(text, { baseDir: dirname(resolve(file)), readFiles: true });
}

export function parseConfig(yamlText: string, options: ParseOptions): FulcrumConfig {
  const doc = parseDocument(yamlText, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        path: `(yaml line ${(e.linePos?.[0]?.line ?? 1).toString()})`,
        message: (e.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:$/, ""),
      })),
    );
  }
  const raw: unknown = doc.toJS();
  const issues: (ConfigIssue & { order: number })[] = [];
  const add = (path: readonly PropertyKey[], message: string): void => {
    issues.push({ path: formatPath(path), message, order: positionOf(doc, path) });
  };

  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) for (const issue of parsed.error.issues) addZodIssue(issue, add);
  // A value the schema already rejected gets no second, cross-key complaint about the same path.
  const rejected = new Set(issues.map((i) => i.path));
  crossChecks(raw, (path, message) => {
    if (!rejected.has(formatPath(path))) add(path, message);
  });
  if (options.readFiles) {
    // A file whose key (or the block holding it) was already rejected is not read: that error says it.
    const refused = issues.map((i) => i.path);
    const under = (path: string): boolean =>
      refused.some((r) => path === r || path.startsWith(`${r}.`) || path.startsWith(`${r}[`));
    for (const issue of fileIssues(namedFiles(raw), options.baseDir))
      if (!under(issue.path)) add(issue.at.path, issue.message);
  }

  if (issues.length > 0 || !parsed.success) {
    // Stable: issues at the same place keep the schema's key order.
    issues.sort((a, b) => a.order - b.order);
    throw new ConfigError(dedupe(issues.map(({ path, message }) => ({ path, message }))));
  }
  return deepFreeze(resolveConfig(parsed.data, options));
}

function addZodIssue(
  issue: z.core.$ZodIssue,
  add: (path: readonly PropertyKey[], message: string) => void,
): void {
  if (issue.code === "unrecognized_keys") {
    for (const key of issue.keys) {
      const near = closestKey(key, keysAt(configSchema, issue.path));
      add([...issue.path, key], near === undefined ? "unknown key" : `unknown key (did you mean "${near}"?)`);
    }
    return;
  }
  add(issue.path, issue.message);
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.path}\0${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The offset of the YAML node at `path` (or of its nearest existing parent), for ordering errors. */
function positionOf(doc: Document, path: readonly PropertyKey[]): number {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true) as
      { range?: [number, number, number] } | undefined;
    if (node && typeof node === "object" && Array.isArray(node.range)) return node.range[0];
  }
  return Number.MAX_SAFE_INTEGER;
}

type Raw = Record<string, unknown>;
const isObject = (v: unknown): v is Raw => typeof v === "object" && v !== null && !Array.isArray(v);
const arrayOf = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * Checks that span keys: names and references. Run over the raw document even when the schema
 * failed, so a config's mistakes are all reported at once; each check skips what it cannot read.
 */
function crossChecks(raw: unknown, add: (path: readonly PropertyKey[], message: string) => void): void {
  if (!isObject(raw)) return;
  adminChecks(raw.admin, add);
  const clusters = arrayOf(raw.clusters);
  const listeners = arrayOf(raw.listeners);
  const clusterNames = new Map<string, number>();
  clusters.forEach((c, i) => {
    if (!isObject(c) || typeof c.name !== "string") return;
    if (clusterNames.has(c.name))
      add(
        ["clusters", i, "name"],
        `duplicate cluster name "${c.name}" (also clusters[${clusterNames.get(c.name)}])`,
      );
    else clusterNames.set(c.name, i);
    const addresses = new Map<string, number>();
    const endpointNames = new Map<string, number>();
    arrayOf(c.endpoints).forEach((e, j) => {
      if (!isObject(e)) return;
      if (typeof e.name === "string") {
        if (endpointNames.has(e.name))
          add(
            ["clusters", i, "endpoints", j, "name"],
            `duplicate endpoint name "${e.name}" (also endpoints[${endpointNames.get(e.name)}])`,
          );
        else endpointNames.set(e.name, j);
      }
      if (typeof e.address !== "string") return;
      if (addresses.has(e.address))
        add(
          ["clusters", i, "endpoints", j, "address"],
          `duplicate endpoint "${e.address}" (also endpoints[${addresses.get(e.address)}])`,
        );
      else addresses.set(e.address, j);
    });
    if (isObject(c.health_check) && c.health_check.watch === true && c.health_check.type !== "grpc") {
      add(["clusters", i, "health_check", "watch"], "true applies only to type: grpc");
    }
    if (c.load_metrics !== undefined && c.policy !== "least_loaded") {
      add(["clusters", i, "load_metrics"], "applies only to policy: least_loaded");
    }
    if (isObject(c.load_metrics)) {
      const lm = c.load_metrics;
      if (lm.metric !== undefined && lm.metrics !== undefined)
        add(["clusters", i, "load_metrics", "metrics"], "use metric or metrics, not both");
      if (Array.isArray(lm.metrics) && lm.metrics.length === 0)
        add(["clusters", i, "load_metrics", "metrics"], "must name at least one metric");
    }
    if (
      isObject(c.affinity) &&
      c.affinity.sequence_idle_timeout !== undefined &&
      c.affinity.key !== "triton_sequence"
    ) {
      add(["clusters", i, "affinity", "sequence_idle_timeout"], "applies only to key: triton_sequence");
    }
    if (isObject(c.affinity) && c.affinity.key !== "prompt_prefix") {
      for (const key of [
        "input",
        "block_bytes",
        "max_blocks",
        "index_blocks",
        "balance_slack",
        "min_match",
      ]) {
        if (c.affinity[key] !== undefined)
          add(["clusters", i, "affinity", key], "applies only to key: prompt_prefix");
      }
    }
  });
  const listenerNames = new Map<string, number>();
  const protocolsOfCluster = new Map<string, Set<unknown>>();
  /** cluster name → the first tcp listener it serves */
  const tcpListenerOf = new Map<string, string>();
  listeners.forEach((l, i) => {
    if (!isObject(l)) return;
    if (typeof l.name === "string") {
      if (listenerNames.has(l.name))
        add(
          ["listeners", i, "name"],
          `duplicate listener name "${l.name}" (also listeners[${listenerNames.get(l.name)}])`,
        );
      else listenerNames.set(l.name, i);
    }
    if (typeof l.cluster === "string") {
      if (!clusterNames.has(l.cluster)) add(["listeners", i, "cluster"], `no cluster named "${l.cluster}"`);
      const set = protocolsOfCluster.get(l.cluster) ?? new Set();
      set.add(l.protocol);
      protocolsOfCluster.set(l.cluster, set);
      if (l.protocol === "tcp" && !tcpListenerOf.has(l.cluster))
        tcpListenerOf.set(l.cluster, typeof l.name === "string" ? l.name : `listeners[${i}]`);
    }
    if (l.protocol === "tcp") {
      for (const key of ["engine", "tls", "max_header_list_size", "stream_balancing"]) {
        if (l[key] !== undefined) add(["listeners", i, key], "applies only to grpc listeners");
      }
    }
    if (l.protocol === "grpc" && l.proxy_protocol !== undefined && l.proxy_protocol !== "none") {
      add(["listeners", i, "proxy_protocol"], "applies only to tcp listeners");
    }
  });
  clusters.forEach((c, i) => {
    if (!isObject(c) || typeof c.name !== "string") return;
    // The tcp relay pipes plain bytes: a cluster's tls there would silently send cleartext.
    const tcpListener = tcpListenerOf.get(c.name);
    if (c.tls !== undefined && tcpListener !== undefined)
      add(
        ["clusters", i, "tls"],
        `upstream TLS is for grpc listeners; cluster "${c.name}" serves tcp listener "${tcpListener}"`,
      );
    const protocols = protocolsOfCluster.get(c.name);
    if (protocols?.has("tcp") && isObject(c.affinity) && typeof c.affinity.key === "string") {
      if (c.affinity.key !== "source_ip" && !protocols.has("grpc")) {
        add(
          ["clusters", i, "affinity", "key"],
          `"${c.affinity.key}" needs a grpc listener; tcp listeners can use source_ip`,
        );
      }
    }
  });
}

/**
 * The admin token that examples/kubernetes.yaml and the image ship: refused wherever admin is
 * reachable from outside the host, so that nobody exposes the runtime API with a published token.
 */
export const PLACEHOLDER_TOKEN = "replace-me";
const DEFAULT_ADMIN_LISTEN = "127.0.0.1:9901";

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/** True for 127.0.0.0/8, ::1 and localhost (the host of `host:port` or `[v6]:port`). */
export function isLoopbackAddress(address: string): boolean {
  let host = address.slice(0, address.lastIndexOf(":"));
  if (host.startsWith("[")) host = host.slice(1, -1).replace(/%.*$/, "");
  if (host.toLowerCase() === "localhost") return true;
  if (isIPv4(host)) return LOOPBACK.check(host, "ipv4");
  if (isIPv6(host)) return LOOPBACK.check(host, "ipv6");
  return false;
}

function adminChecks(admin: unknown, add: (path: readonly PropertyKey[], message: string) => void): void {
  if (!isObject(admin) || admin.token !== PLACEHOLDER_TOKEN) return;
  const listen = typeof admin.listen === "string" ? admin.listen : DEFAULT_ADMIN_LISTEN;
  if (isLoopbackAddress(listen)) return;
  add(
    ["admin", "token"],
    `"${PLACEHOLDER_TOKEN}" is the shipped placeholder; set a real token before exposing admin.listen ${listen}`,
  );
}

/** Defaults that depend on other keys, and file paths made absolute. */
function resolveConfig(config: FulcrumConfig, options: ParseOptions): FulcrumConfig {
  const tcpClusters = new Set(config.listeners.filter((l) => l.protocol === "tcp").map((l) => l.cluster));
  const file = (p: string): string => resolve(options.baseDir, p);
  return {
    ...config,
    listeners: config.listeners.map((l) =>
      l.tls
        ? {
            ...l,
            tls: {
              ...l.tls,
              cert: file(l.tls.cert),
              key: file(l.tls.key),
              ...(l.tls.client_ca !== undefined ? { client_ca: file(l.tls.client_ca) } : {}),
            },
          }
        : l,
    ),
    clusters: config.clusters.map((c): ClusterConfig => ({
      ...c,
      health_check:
        c.health_check ?? healthCheckSchema.parse({ type: tcpClusters.has(c.name) ? "tcp" : "none" }),
      ...(c.tls ? { tls: { ...c.tls, ...(c.tls.ca !== undefined ? { ca: file(c.tls.ca) } : {}) } } : {}),
    })),
  };
}

/** The resolved config with secrets replaced by "<redacted>", for `fulcrum check` and `/status`. */
export function redactConfig(config: FulcrumConfig): unknown {
  const copy = JSON.parse(JSON.stringify(config)) as {
    admin?: { token: string };
    listeners: { tls?: { key: string } }[];
  };
  if (copy.admin && copy.admin.token !== "") copy.admin.token = "<redacted>";
  for (const l of copy.listeners) if (l.tls) l.tls.key = "<redacted>";
  return copy;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
