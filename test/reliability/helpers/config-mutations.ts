/**
 * Broken configs made from a valid one by exactly one known mutation at a known dotted path, as
 * fast-check arbitraries: each mutation kind picks one place of the valid config (from the contract
 * table in config-contract.ts) and one value, or one change, that the contract forbids there.
 */
import fc from "fast-check";
import { stringify } from "yaml";
import {
  KNOWN_KEYS,
  NO_MAX,
  asText,
  deleteAt,
  dotted,
  getAt,
  patternOf,
  placesOf,
  setAt,
  type Field,
  type Json,
  type Path,
  type Place,
} from "./config-contract.js";

export type { Json } from "./config-contract.js";

export type MutationKind =
  | "wrong_type"
  | "unknown_key"
  | "bad_duration"
  | "bad_size"
  | "bad_address"
  | "out_of_range"
  | "missing_required"
  | "empty_value"
  | "duplicate_name"
  | "unknown_cluster"
  | "bad_enum"
  | "misplaced_key";

export interface Mutation {
  readonly kind: MutationKind;
  /** The dotted path the error must name, e.g. `clusters[0].endpoints[1].address`. */
  readonly path: string;
  /** What was done, for failure messages. */
  readonly change: string;
  readonly yaml: string;
}

// prettier-ignore
const BAD_DURATIONS = [
  "5 s", "5sec", "-1s", "1.5s", "s", "", "10", "5S", "1d", "10 ms", "ms", "1e3ms", " 2s", "2s ", "2m30s",
  "P1D", "1h1m", "∞", "0.5h",
];
// prettier-ignore
const BAD_DURATION_UNITS = ["d", "us", "ns", "sec", "min", "hr", "S", "M", "H", "Ms", "mS", "secs"];
// prettier-ignore
const BAD_SIZES = [
  "16KB", "16 KiB", "1.5MiB", "16kib", "-1B", "16", "GiB", "1GiB", "16K", "0x10B", "", "16KiB ", "KiB",
];
// prettier-ignore
const BAD_SIZE_UNITS = ["KB", "MB", "GB", "GiB", "kib", "mib", "b", "k", "m", "Kib", "kB", "bytes"];
// prettier-ignore
const BAD_ADDRESSES = [
  "foo", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:99999", "127.0.0.1:65536", "[::1:80", "[1.2.3.4]:80",
  "host:port", "1.2.3.4:80:90", "http://127.0.0.1:80", " 127.0.0.1:80", "127.0.0.1:80 ", "127.0.0.1:-1",
  "::1:80", "[]:80", "localhost:8o", "[::1]", "127.0.0.1:123456", "a b:80", "[:::]:80", "",
];
// prettier-ignore
const BAD_ENUMS = [
  "udp", "http", "TCP", "Round_Robin", "round-robin", "leastconn", "v3", "quic", "verbose", "consul",
  "http2c", "", "none ", "auto", "default", "fastest", "INFO",
];
// prettier-ignore
const BAD_AFFINITY_KEYS = [
  "ip", "header:", "cookie:session", "header:x y", "SOURCE_IP", "source-ip", "header",
];
// prettier-ignore
const TYPOS = [
  "idle_timout", "listen_address", "endpoint", "Listen", "clusterName", "timeout_ms", "weigth",
  "helth_check", "max_conections", "tokn", "adress", "protocl", "polcy", "healthcheck", "Name",
];

/** JSON values of a type other than the one `field` takes (never a value it accepts). */
function otherTypes(field: Field): Json[] {
  switch (field.kind) {
    case "mapping":
      return ["x", 5, [], true, null];
    case "list":
      return ["x", 5, {}, true, null];
    case "int":
    case "factor":
    case "fraction":
    case "threads":
      return ["3", true, [], {}, null, "1"];
    case "bool":
      return ["true", "yes", 1, 0, null, []];
    default:
      // Strings of every kind; 42 is never the 0 that an idle_timeout accepts.
      return [42, true, [], {}, null, 1.5];
  }
}

function outOfRange(field: Field): Json[] {
  switch (field.kind) {
    case "int":
      return [field.min - 1, field.min + 0.5, -1_000_000_000, ...(field.max < NO_MAX ? [field.max + 1] : [])];
    case "factor":
      return [0.5, -1, 0.999, -0.5];
    case "fraction":
      return [-0.1, 1.5, -1, 2];
    case "threads":
      return [0, -1, 1.5, -100];
    default:
      return [];
  }
}

/** One arbitrary per mutation kind that has a place to hit in `base`. */
export function mutationsOf(base: Json): Map<MutationKind, fc.Arbitrary<Mutation>> {
  const places = placesOf(base);
  const yamlOf = (config: Json): string => stringify(config);
  const out = new Map<MutationKind, fc.Arbitrary<Mutation>>();
  const add = (kind: MutationKind, arb: fc.Arbitrary<Mutation> | undefined): void => {
    if (arb) out.set(kind, arb);
  };
  /** A place among `where`, then one of `values(place)`, applied by `apply`. */
  const pick = (
    kind: MutationKind,
    where: (p: Place) => boolean,
    values: (p: Place) => fc.Arbitrary<Json>,
    apply: (p: Place, v: Json) => { config: Json; path: Path; change: string } = (p, v) => ({
      config: setAt(base, p.path, v),
      path: p.path,
      change: `${dotted(p.path)} = ${JSON.stringify(v)}`,
    }),
  ): fc.Arbitrary<Mutation> | undefined => {
    const at = places.filter(where);
    if (at.length === 0) return undefined;
    return fc
      .constantFrom(...at)
      .chain((p) => values(p).map((v) => ({ p, v })))
      .map(({ p, v }) => {
        const m = apply(p, v);
        return { kind, path: dotted(m.path), change: m.change, yaml: yamlOf(m.config) };
      });
  };

  add(
    "wrong_type",
    pick(
      "wrong_type",
      () => true,
      (p) => fc.constantFrom(...otherTypes(p.field)),
    ),
  );
  const mappings = places.filter((p) => p.field.kind === "mapping");
  const unknownKey = fc
    .tuple(
      fc.constantFrom<Path>([], ...mappings.map((p) => p.path)),
      fc.oneof(fc.constantFrom(...TYPOS), fc.stringMatching(/^[a-z][a-z0-9_]{1,14}$/)),
      fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean()),
    )
    .filter(([, key]) => !KNOWN_KEYS.has(key))
    .map(([at, key, value]): Mutation => {
      const config = structuredClone(base);
      (getAt(config, at) as Record<string, Json>)[key] = value;
      return {
        kind: "unknown_key",
        path: dotted([...at, key]),
        change: `add ${dotted([...at, key])}`,
        yaml: yamlOf(config),
      };
    });
  add("unknown_key", unknownKey);
  add(
    "bad_duration",
    pick(
      "bad_duration",
      (p) => p.field.kind === "duration",
      (p) =>
        fc.oneof(
          fc.constantFrom(
            ...BAD_DURATIONS,
            ...(p.field.kind === "duration" && !p.field.orZero ? ["0", 0] : []),
          ),
          fc.tuple(fc.nat(1000), fc.constantFrom(...BAD_DURATION_UNITS)).map(([n, u]) => `${n}${u}`),
        ),
    ),
  );
  add(
    "bad_size",
    pick(
      "bad_size",
      (p) => p.field.kind === "size",
      () =>
        fc.oneof(
          fc.constantFrom(...BAD_SIZES),
          fc.tuple(fc.nat(100_000), fc.constantFrom(...BAD_SIZE_UNITS)).map(([n, u]) => `${n}${u}`),
        ),
    ),
  );
  add(
    "bad_address",
    pick(
      "bad_address",
      (p) => p.field.kind === "address",
      (p) =>
        fc.constantFrom(
          ...BAD_ADDRESSES,
          ...(p.field.kind === "address" && p.field.minPort === 1 ? ["127.0.0.1:0", "[::1]:0"] : []),
        ),
    ),
  );
  add(
    "out_of_range",
    pick(
      "out_of_range",
      (p) => outOfRange(p.field).length > 0,
      (p) => fc.constantFrom(...outOfRange(p.field)),
    ),
  );
  add(
    "missing_required",
    pick(
      "missing_required",
      (p) => "required" in p.field && p.field.required === true,
      () => fc.constant(null),
      (p) => ({ config: deleteAt(base, p.path), path: p.path, change: `delete ${dotted(p.path)}` }),
    ),
  );
  add(
    "empty_value",
    pick(
      "empty_value",
      (p) =>
        p.field.kind === "name" ||
        p.field.kind === "ref" ||
        (p.field.kind === "list" && p.field.nonEmpty === true),
      (p) => fc.constant(p.field.kind === "list" ? [] : ""),
    ),
  );
  // A later entry takes the name (or address) of an earlier one of the same list: the later one is named.
  const duplicates = places.filter(
    (p) =>
      (p.field.kind === "name" || p.field.kind === "address") &&
      "unique" in p.field &&
      p.field.unique === true &&
      typeof p.path[p.path.length - 2] === "number" &&
      (p.path[p.path.length - 2] as number) > 0,
  );
  if (duplicates.length > 0)
    add(
      "duplicate_name",
      fc
        .constantFrom(...duplicates)
        .chain((p) => fc.nat((p.path[p.path.length - 2] as number) - 1).map((earlier) => ({ p, earlier })))
        .map(({ p, earlier }): Mutation => {
          const twin = [...p.path.slice(0, -2), earlier, p.path[p.path.length - 1] as string];
          const value = getAt(base, twin);
          return {
            kind: "duplicate_name",
            path: dotted(p.path),
            change: `${dotted(p.path)} = ${dotted(twin)} (${JSON.stringify(value)})`,
            yaml: yamlOf(setAt(base, p.path, value)),
          };
        }),
    );
  const clusterNames = new Set(
    places.filter((p) => patternOf(p.path) === "clusters[].name").map((p) => asText(p.value)),
  );
  add(
    "unknown_cluster",
    pick(
      "unknown_cluster",
      (p) => p.field.kind === "ref",
      () => fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/).filter((n) => !clusterNames.has(n)),
    ),
  );
  add(
    "bad_enum",
    pick(
      "bad_enum",
      (p) => p.field.kind === "enum" || p.field.kind === "affinity_key" || p.field.kind === "threads",
      (p) => {
        if (p.field.kind === "affinity_key") return fc.constantFrom(...BAD_AFFINITY_KEYS);
        if (p.field.kind === "threads") return fc.constantFrom("AUTO", "all", "max", "auto ", "");
        const allowed = new Set(p.field.kind === "enum" ? p.field.values : []);
        return fc.oneof(
          fc.constantFrom(...BAD_ENUMS.filter((v) => !allowed.has(v))),
          fc
            .constantFrom(...allowed)
            .map((v) => v.toUpperCase())
            .filter((v) => !allowed.has(v)),
        );
      },
    ),
  );
  add("misplaced_key", misplaced(base, yamlOf));
  return out;
}

/** Keys valid in the contract but not where they are put (the cross-key rules of docs/architecture.md). */
function misplaced(base: Json, yamlOf: (c: Json) => string): fc.Arbitrary<Mutation> | undefined {
  const options: { path: Path; value: Json }[] = [];
  const listeners = getAt(base, ["listeners"]) as Record<string, Json>[];
  const clusters = getAt(base, ["clusters"]) as Record<string, Json>[];
  listeners.forEach((l, i) => {
    if (l.protocol === "tcp") {
      for (const [key, value] of [
        ["engine", "http2"],
        ["tls", { cert: "tls.crt", key: "tls.key" }],
        ["max_header_list_size", "16KiB"],
      ] as const)
        if (l[key] === undefined) options.push({ path: ["listeners", i, key], value });
    }
    if (l.protocol === "grpc" && l.proxy_protocol === undefined) {
      options.push({ path: ["listeners", i, "proxy_protocol"], value: "v1" });
      options.push({ path: ["listeners", i, "proxy_protocol"], value: "v2" });
    }
  });
  const tcpOnly = new Set(
    clusters
      .map((c) => asText(c.name))
      .filter((name) => {
        const protocols = listeners.filter((l) => l.cluster === name).map((l) => l.protocol);
        return protocols.includes("tcp") && !protocols.includes("grpc");
      }),
  );
  clusters.forEach((c, i) => {
    const affinity = c.affinity as Record<string, Json> | undefined;
    if (affinity && affinity.key !== "triton_sequence" && affinity.sequence_idle_timeout === undefined)
      options.push({ path: ["clusters", i, "affinity", "sequence_idle_timeout"], value: "60s" });
    if (c.policy !== "least_loaded" && c.load_metrics === undefined)
      options.push({ path: ["clusters", i, "load_metrics"], value: { port: 8002 } });
    if (tcpOnly.has(asText(c.name))) {
      options.push({ path: ["clusters", i, "affinity"], value: { key: "header:x-user" } });
      options.push({ path: ["clusters", i, "affinity"], value: { key: "triton_sequence" } });
    }
  });
  if (options.length === 0) return undefined;
  return fc.constantFrom(...options).map(({ path, value }): Mutation => {
    // An affinity block on a tcp-only cluster is wrong because of its key: the key is named.
    const named = path[path.length - 1] === "affinity" ? [...path, "key"] : path;
    return {
      kind: "misplaced_key",
      path: dotted(named),
      change: `${dotted(path)} = ${JSON.stringify(value)}`,
      yaml: yamlOf(setAt(base, path, value)),
    };
  });
}

/** `count` distinct mutations (by YAML text), drawn with `seed`, every kind included. */
export function sampleMutations(base: Json, count: number, seed: number): Mutation[] {
  const arb = fc.oneof(...mutationsOf(base).values());
  const seen = new Set<string>();
  const out: Mutation[] = [];
  for (const m of fc.sample(arb, { seed, numRuns: count * 4 })) {
    if (seen.has(m.yaml)) continue;
    seen.add(m.yaml);
    out.push(m);
    if (out.length === count) return out;
  }
  throw new Error(`only ${out.length} distinct mutations from ${count * 4} draws`);
}
