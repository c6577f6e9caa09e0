/**
 * DNS discovery (`discovery: dns`), after Envoy's STRICT_DNS cluster: every `dns_refresh` each
 * endpoint's name is resolved with `Resolver.resolve4` and `resolve6` (c-ares, so `dns_resolvers` can
 * name any server, a test's own included), and the cluster's endpoints become the union of all A and
 * AAAA records of all names, each with the port and weight of the endpoint that named it. An IP
 * literal stays as configured. A change is applied like a reload: added endpoints start healthy,
 * removed ones take no new work while theirs finishes.
 *
 * NXDOMAIN and NODATA are answers (the name has no such records now); any other failure (timeout,
 * SERVFAIL, refused) keeps that name's last good addresses and logs a warning. Nothing here throws
 * once started: every round ends in a result, never an exception across the timer.
 */
import { Resolver } from "node:dns/promises";
import { isIP } from "node:net";
import { splitAddress, type EndpointSet, type EndpointSpec } from "../balancer/endpoint-set.js";
import { ConfigError, type ConfigIssue } from "../config/config-error.js";
import type { ClusterConfig } from "../config/config-schema.js";
import { durationMs } from "../config/config-units.js";
import type { Logger } from "../log/logger.js";
import { RateLimitedWarning } from "../log/rate-limited-warning.js";

/**
 * What discovery needs of a cluster: its current members and the reload-style update (the runtime's
 * ClusterRuntime implements it; discovery does not import the runtime that starts it).
 */
export interface DiscoveredCluster {
  readonly endpoints: Pick<EndpointSet, "endpoints">;
  /** Kept endpoints keep their state and any weight in `adminWeights`; added ones start healthy. */
  setEndpoints(specs: readonly EndpointSpec[], adminWeights: ReadonlySet<string>): void;
}

export interface DnsDiscoveryDeps {
  readonly log: Logger;
  /** The cluster's runtime now (a reload may have replaced it); undefined once the cluster is gone. */
  readonly cluster: () => DiscoveredCluster | undefined;
  /** Endpoints whose weight was set through the admin API: their weight survives a change. */
  readonly adminWeights?: (() => ReadonlySet<string> | undefined) | undefined;
  /** Called after each applied change with the addresses kept (e.g. to close upstream sessions of the rest). */
  readonly retain?: ((addresses: ReadonlySet<string>) => void) | undefined;
  /** The cluster's path in the config for error messages (default `clusters[?]`). */
  readonly path?: string | undefined;
}

export type AddressFamily = 4 | 6;

/** Addresses per `family:name`, as a round left them (the last good answer of each). */
export type ResolvedNames = ReadonlyMap<string, readonly string[]>;

/** Per-attempt timeout and tries: a resolver that does not answer costs a round about 4 s (measured). */
const RESOLVER_OPTIONS = { timeout: 1000, tries: 2 } as const;
/** While some name has never answered, retry this often (or at `dns_refresh` when that is sooner). */
const FIRST_ANSWER_RETRY_MS = 1000;
/** Codes that are answers: the name, or the family for the name, has no records. */
const EMPTY_ANSWER = new Set(["ENODATA", "ENOTFOUND"]);

/** `4:name` / `6:name`: the key of one lookup. */
export function lookupKey(family: AddressFamily, name: string): string {
  return `${family}:${name}`;
}

/** The names a cluster resolves: the hosts of its endpoints that are not IP literals, once each. */
export function namesOf(config: ClusterConfig): string[] {
  const names = new Set<string>();
  for (const e of config.endpoints) {
    const host = splitAddress(e.address)?.host;
    if (host !== undefined && isIP(host) === 0) names.add(host);
  }
  return [...names];
}

/**
 * The endpoint specs for `config` given the resolved names: in configuration order, an IP literal as
 * is, a name as its IPv4 then IPv6 addresses (each sorted, since servers rotate record order), with
 * the endpoint's port and weight; an address named twice counts once (the first).
 */
export function specsFromNames(config: ClusterConfig, resolved: ResolvedNames): EndpointSpec[] {
  const specs: EndpointSpec[] = [];
  const seen = new Set<string>();
  const add = (address: string, weight: number): void => {
    if (seen.has(address)) return;
    seen.add(address);
    specs.push({ address, weight });
  };
  for (const e of config.endpoints) {
    const parts = splitAddress(e.address);
    if (!parts) continue;
    if (isIP(parts.host) !== 0) {
      add(e.address, e.weight);
      continue;
    }
    for (const ip of [...(resolved.get(lookupKey(4, parts.host)) ?? [])].sort())
      add(`${ip}:${parts.port}`, e.weight);
    for (const ip of [...(resolved.get(lookupKey(6, parts.host)) ?? [])].sort())
      add(`[${ip}]:${parts.port}`, e.weight);
  }
  return specs;
}

/** `dns_resolvers` entries must be IP addresses (c-ares cannot resolve the resolver's own name). */
export function dnsResolverIssues(config: ClusterConfig, path = "clusters[?]"): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  config.dns_resolvers.forEach((r, j) => {
    const host = splitAddress(r)?.host;
    if (host === undefined || isIP(host) === 0)
      issues.push({
        path: `${path}.dns_resolvers[${j}]`,
        message: `expected an IP address and port like "10.0.0.10:53", got ${JSON.stringify(r)}`,
      });
  });
  return issues;
}

type LookupResult =
  | { readonly key: string; readonly ok: true; readonly addresses: readonly string[] }
  | { readonly key: string; readonly ok: false; readonly code: string };

async function lookup(resolver: Resolver, family: AddressFamily, name: string): Promise<LookupResult> {
  const key = lookupKey(family, name);
  try {
    const addresses = family === 4 ? await resolver.resolve4(name) : await resolver.resolve6(name);
    return { key, ok: true, addresses };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return EMPTY_ANSWER.has(code) ? { key, ok: true, addresses: [] } : { key, ok: false, code };
  }
}

export class DnsDiscovery {
  private config: ClusterConfig;
  private resolver: Resolver;
  private readonly resolved = new Map<string, readonly string[]>();
  private readonly log: Logger;
  private readonly warning: RateLimitedWarning;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The specs last handed to the cluster, as `address*weight` text, to apply only changes. */
  private appliedKey: string | undefined;
  private current: EndpointSpec[];

  /** Throws a ConfigError when a `dns_resolvers` entry is not an IP address and port. */
  constructor(
    config: ClusterConfig,
    private readonly deps: DnsDiscoveryDeps,
  ) {
    this.log = deps.log.child({ component: "dns-discovery", cluster: config.name });
    this.warning = new RateLimitedWarning(this.log, 10_000);
    this.config = config;
    this.resolver = this.createResolver(config);
    this.current = specsFromNames(config, this.resolved);
  }

  /** The endpoint specs of the last round (IP literals only before the first). */
  get specs(): readonly EndpointSpec[] {
    return this.current;
  }

  /**
   * Resolves every name once and applies the result, then keeps refreshing every `dns_refresh`.
   * Resolves (never rejects) when the first round is applied, within about 4 s even when the resolver
   * does not answer; names that got no answer then contribute no endpoint until they do.
   */
  async start(): Promise<void> {
    await this.round();
  }

  /**
   * Takes a reloaded cluster config (names, weights, `dns_refresh`, `dns_resolvers`) and resolves at
   * once. Throws a ConfigError, and changes nothing, when a resolver entry is not an IP address.
   */
  async update(config: ClusterConfig): Promise<void> {
    const resolver = this.createResolver(config);
    this.resolver.cancel();
    this.resolver = resolver;
    this.config = config;
    const names = new Set(namesOf(config));
    for (const key of this.resolved.keys()) if (!names.has(key.slice(2))) this.resolved.delete(key);
    await this.round();
  }

  /** Stops refreshing and cancels lookups in flight; the cluster keeps its endpoints. Idempotent. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.resolver.cancel();
  }

  private createResolver(config: ClusterConfig): Resolver {
    const issues = dnsResolverIssues(config, this.deps.path);
    if (issues.length > 0) throw new ConfigError(issues);
    const resolver = new Resolver(RESOLVER_OPTIONS);
    if (config.dns_resolvers.length > 0) resolver.setServers(config.dns_resolvers);
    return resolver;
  }

  /** One refresh: every name's A and AAAA records, then the cluster update if anything changed. */
  private async round(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped) return;
    const config = this.config;
    const names = namesOf(config);
    try {
      const results = await Promise.all(
        names.flatMap((n) => [lookup(this.resolver, 4, n), lookup(this.resolver, 6, n)]),
      );
      // Stopped, or superseded by a reload's round while these lookups ran.
      if (this.stopped || config !== this.config) return;
      const failed: string[] = [];
      for (const r of results) {
        if (r.ok) this.resolved.set(r.key, r.addresses);
        else failed.push(`${r.key.slice(2)} (${r.key[0] === "4" ? "A" : "AAAA"}): ${r.code}`);
      }
      if (failed.length > 0)
        this.warning.warn(
          "lookup",
          { failed, resolvers: config.dns_resolvers },
          "dns lookup failed: keeping the last addresses of these names",
        );
      this.apply(specsFromNames(config, this.resolved));
    } catch (err) {
      // Only a bug gets here (lookups report, never reject); keep the last endpoints and go on.
      this.log.error({ err }, "dns discovery round failed");
    } finally {
      if (!this.stopped && config === this.config) this.schedule(names);
    }
  }

  private schedule(names: readonly string[]): void {
    const refreshMs = durationMs(this.config.dns_refresh);
    const unanswered = names.some(
      (n) => !this.resolved.has(lookupKey(4, n)) || !this.resolved.has(lookupKey(6, n)),
    );
    const delay = unanswered ? Math.min(refreshMs, FIRST_ANSWER_RETRY_MS) : refreshMs;
    this.timer = setTimeout(() => void this.round(), delay);
    // Listeners keep the process alive; a pending refresh alone should not.
    this.timer.unref();
  }

  private apply(specs: EndpointSpec[]): void {
    this.current = specs;
    const cluster = this.deps.cluster();
    if (!cluster) return;
    const key = specs.map((s) => `${s.address}*${s.weight}`).join(",");
    const addresses = new Set(specs.map((s) => s.address));
    const members = cluster.endpoints.endpoints;
    // Also re-apply when the cluster's members differ (e.g. a reload set other endpoints meanwhile).
    const inStep = members.length === addresses.size && members.every((e) => addresses.has(e.address));
    if (key === this.appliedKey && inStep) return;
    cluster.setEndpoints(specs, this.deps.adminWeights?.() ?? new Set());
    this.deps.retain?.(addresses);
    this.appliedKey = key;
    const names: Record<string, string[]> = {};
    for (const name of namesOf(this.config))
      names[name] = [4, 6].flatMap((f) => this.resolved.get(lookupKey(f as AddressFamily, name)) ?? []);
    this.log.info({ endpoints: specs.length, names }, "dns discovery changed the endpoints");
  }
}
