/**
 * A socket that cannot be bound at start-up or reload, as the one path-named line an operator reads:
 * `listeners[1].listen: cannot bind 127.0.0.1:9000 (listener "b"): the address is in use (EADDRINUSE)`.
 */
import type { ConfigIssue } from "../config/config-error.js";
import type { FulcrumConfig } from "../config/config-schema.js";
import { BindError } from "./data-plane.js";

/** What each common bind error means, in the words of the fix it calls for. */
const MEANINGS: Readonly<Record<string, string>> = {
  EADDRINUSE: "the address is in use",
  EACCES: "permission denied (ports below 1024 need privileges)",
  EADDRNOTAVAIL: "the address is not one of this host's",
};

/** The message for `address` failing to bind with `code` (an errno name such as EADDRINUSE). */
export function bindFailureMessage(address: string, code: string, listener?: string): string {
  const who = listener !== undefined ? ` (listener "${listener}")` : "";
  const meaning = MEANINGS[code];
  return `cannot bind ${address}${who}: ${meaning !== undefined ? `${meaning} (${code})` : code}`;
}

/** A BindError as the config path it names; anything else is a bug and rethrown. */
export function bindIssue(err: unknown, config: FulcrumConfig): ConfigIssue {
  if (!(err instanceof BindError)) throw err;
  const lc = config.listeners[err.index];
  return {
    path: `listeners[${err.index}].listen`,
    message: bindFailureMessage(lc?.listen ?? "?", err.code, lc?.name),
  };
}
