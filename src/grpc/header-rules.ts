/**
 * Which header fields cross the proxy, the same rules for both engines (RFC 9113 §8.2.2, §8.3):
 * connection-specific fields never cross and make a request malformed; `host` (HTTP/1.1's
 * authority: an HTTP/2 request carries `:authority`) and `http2-settings` (HTTP/1.1's upgrade to
 * h2c) belong to one hop and never cross either; trailers carry no pseudo-header. Everything else,
 * `date`, `-bin` metadata and never-indexed flags included, passes unchanged, as HAProxy and Envoy
 * pass it.
 */

import { isConnectionSpecific } from "../h2/h2-message-checks.js";

/** `host` and `http2-settings`: fields of one hop that are not connection-specific (no malformed message). */
export function isOneHopField(name: string): boolean {
  const n = name.length;
  return (n === 4 && name === "host") || (n === 14 && name === "http2-settings");
}

/**
 * True when a received field crosses to the other side: request and response headers keep their
 * pseudo-headers (`keepPseudo`), trailers do not.
 */
export function crossesProxy(name: string, keepPseudo: boolean): boolean {
  if (name.charCodeAt(0) === 0x3a /* : */) return keepPseudo;
  return !isConnectionSpecific(name) && !isOneHopField(name);
}
