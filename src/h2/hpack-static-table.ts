/**
 * The HPACK static table (RFC 7541 §2.3.1 and Appendix A): 61 fixed entries, index 1 to 61, shared by
 * every connection. Indices after 61 address the dynamic table (§2.3.3).
 */

/** Names of the static entries; index 0 is unused so that `STATIC_NAMES[i]` is entry i. */
// prettier-ignore
export const STATIC_NAMES: readonly string[] = [
  "",
  ":authority", ":method", ":method", ":path", ":path", ":scheme", ":scheme",
  ":status", ":status", ":status", ":status", ":status", ":status", ":status",
  "accept-charset", "accept-encoding", "accept-language", "accept-ranges", "accept",
  "access-control-allow-origin", "age", "allow", "authorization", "cache-control",
  "content-disposition", "content-encoding", "content-language", "content-length",
  "content-location", "content-range", "content-type", "cookie", "date", "etag", "expect",
  "expires", "from", "host", "if-match", "if-modified-since", "if-none-match", "if-range",
  "if-unmodified-since", "last-modified", "link", "location", "max-forwards",
  "proxy-authenticate", "proxy-authorization", "range", "referer", "refresh", "retry-after",
  "server", "set-cookie", "strict-transport-security", "transfer-encoding", "user-agent", "vary",
  "via", "www-authenticate",
];

const NON_EMPTY_VALUES: Readonly<Record<number, string>> = {
  2: "GET",
  3: "POST",
  4: "/",
  5: "/index.html",
  6: "http",
  7: "https",
  8: "200",
  9: "204",
  10: "206",
  11: "304",
  12: "400",
  13: "404",
  14: "500",
  16: "gzip, deflate",
};

/** Values of the static entries, parallel to `STATIC_NAMES`; most are empty. */
export const STATIC_VALUES: readonly string[] = STATIC_NAMES.map((_, i) => NON_EMPTY_VALUES[i] ?? "");

/** Number of static entries; the first dynamic entry has index `STATIC_TABLE_LENGTH + 1`. */
export const STATIC_TABLE_LENGTH = 61;

/** The static entries carrying one name. */
export interface StaticName {
  /** Lowest index carrying this name, for a literal with an indexed name. */
  readonly nameIndex: number;
  /** Index of each (name, value) pair present in the table. */
  readonly values: ReadonlyMap<string, number>;
}

const BY_NAME: ReadonlyMap<string, StaticName> = (() => {
  const map = new Map<string, { nameIndex: number; values: Map<string, number> }>();
  for (let i = 1; i <= STATIC_TABLE_LENGTH; i++) {
    const name = STATIC_NAMES[i] as string;
    let entry = map.get(name);
    if (entry === undefined) {
      entry = { nameIndex: i, values: new Map() };
      map.set(name, entry);
    }
    entry.values.set(STATIC_VALUES[i] as string, i);
  }
  return map;
})();

/** The static entries named `name`, or undefined when the name is not in the table. */
export function staticTableName(name: string): StaticName | undefined {
  return BY_NAME.get(name);
}
