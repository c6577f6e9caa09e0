/**
 * What crosses the `frames` engine, header by header (RFC 9113 §8.2, §8.3; gRPC's PROTOCOL-HTTP2.md):
 * a request is checked for the rules a server must enforce (pseudo-headers known, once each and first;
 * :method, :scheme and :path present; no connection-specific field; `te` only "trailers") and
 * forwarded with the upstream's :scheme; what crosses is decided by the rules both engines share
 * (header-rules.ts).
 */
import { FIELD_NEVER_INDEXED, HeaderList } from "../../h2/hpack-header-list.js";
import { isConnectionSpecific } from "../../h2/h2-message-checks.js";
import { crossesProxy, isOneHopField } from "../header-rules.js";

/**
 * Builds the upstream request from a client's header block into `out`; returns why the request is
 * malformed (a stream error PROTOCOL_ERROR), or undefined when it is fine.
 */
export function upstreamRequest(
  list: HeaderList,
  scheme: "http" | "https",
  out: HeaderList,
): string | undefined {
  out.clear();
  let method: string | undefined;
  let path: string | undefined;
  let authority: string | undefined;
  let schemeSeen = false;
  let regular = false;
  // One pass: pseudo-headers must all come first (§8.3), so the first regular field is where the
  // request's own pseudo-headers are written, and every later field follows them.
  for (let i = 0; i < list.length; i++) {
    const name = list.name(i);
    if (name.charCodeAt(0) === 0x3a /* : */) {
      if (regular) return "pseudo-header after a regular field";
      const value = list.value(i);
      switch (name) {
        case ":method":
          if (method !== undefined) return "duplicate :method";
          method = value;
          break;
        case ":path":
          if (path !== undefined) return "duplicate :path";
          if (value === "") return "empty :path";
          path = value;
          break;
        case ":authority":
          if (authority !== undefined) return "duplicate :authority";
          authority = value;
          break;
        case ":scheme":
          if (schemeSeen) return "duplicate :scheme";
          schemeSeen = true;
          break;
        default:
          return `unknown pseudo-header ${name}`;
      }
      continue;
    }
    if (!regular) {
      regular = true;
      const missing = pseudoHeaders(out, method, scheme, path, authority, schemeSeen);
      if (missing !== undefined) return missing;
    }
    if (isConnectionSpecific(name)) return `connection-specific field ${name}`;
    const value = list.value(i);
    if (name === "te" && value !== "trailers") return 'te other than "trailers"';
    // Connection-specific fields were refused above; what is left of one hop stays here.
    if (isOneHopField(name)) continue;
    out.add(name, value, list.neverIndexed(i) ? FIELD_NEVER_INDEXED : 0);
  }
  if (!regular) return pseudoHeaders(out, method, scheme, path, authority, schemeSeen);
  return undefined;
}

/** The upstream request's pseudo-headers, or why the request is malformed without them. */
function pseudoHeaders(
  out: HeaderList,
  method: string | undefined,
  scheme: "http" | "https",
  path: string | undefined,
  authority: string | undefined,
  schemeSeen: boolean,
): string | undefined {
  if (method === undefined || path === undefined || !schemeSeen) return "missing :method, :scheme or :path";
  out.add(":method", method);
  out.add(":scheme", scheme);
  out.add(":path", path);
  if (authority !== undefined) out.add(":authority", authority);
  return undefined;
}

/**
 * Request header lists of streams that ended, for the next streams of this thread: a stream keeps its
 * request (a retry sends it again) until it finishes, and a fresh list grows three arrays field by
 * field (measured: ~0.5 KB of the ~4 KB of garbage per unary RPC). Bounded, so a burst of streams
 * leaves at most this many behind.
 */
const spareRequestLists: HeaderList[] = [];
const SPARE_REQUEST_LISTS = 256;

/** An empty header list for a new stream's request; give it back with `releaseRequestList`. */
export function takeRequestList(): HeaderList {
  return spareRequestLists.pop() ?? new HeaderList();
}

/** The stream that held `list` is over and nothing refers to the list any more. */
export function releaseRequestList(list: HeaderList): void {
  if (spareRequestLists.length >= SPARE_REQUEST_LISTS) return;
  list.clear();
  spareRequestLists.push(list);
}

/** A response header block or trailers for the other side: connection-specific fields dropped. */
export function forwardedFields(list: HeaderList, out: HeaderList, keepPseudo: boolean): void {
  out.clear();
  for (let i = 0; i < list.length; i++) {
    const name = list.name(i);
    if (!crossesProxy(name, keepPseudo)) continue;
    out.add(name, list.value(i), list.neverIndexed(i) ? FIELD_NEVER_INDEXED : 0);
  }
}

/** A gRPC response that is only trailers (HEADERS with END_STREAM): status and message. */
export function trailersOnly(status: number, message: string): HeaderList {
  const out = new HeaderList();
  out.add(":status", "200");
  out.add("content-type", "application/grpc");
  out.add("grpc-status", String(status));
  out.add("grpc-message", message);
  return out;
}

/** Trailers carrying a status, after response headers were sent. */
export function statusTrailers(status: number, message: string): HeaderList {
  const out = new HeaderList();
  out.add("grpc-status", String(status));
  out.add("grpc-message", message);
  return out;
}
