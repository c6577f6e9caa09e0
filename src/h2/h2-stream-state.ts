/**
 * The life of one stream as one side sees it (RFC 9113 §5.1), push disabled, so the reserved states
 * never occur. "open" and "half-closed-local" come in two forms, as in hyperium/h2: before the peer's
 * first header block ("…-awaiting-headers": a client's stream until the response headers arrive) and
 * after. That is what makes DATA before the response headers (§8.1) and a second non-final header
 * block refusable by the same function as the frames of §5.1.
 *
 * One transition function takes every event and answers the next state, or the error RFC 9113 names
 * for a frame the state does not allow: a stream error the caller sends as RST_STREAM.
 */

export type StreamState =
  | "idle"
  | "open-awaiting-headers"
  | "open"
  | "half-closed-local-awaiting-headers"
  | "half-closed-local"
  | "half-closed-remote"
  | "closed";

/**
 * What happens to a stream. `send-headers`: our first header block (a client's request); a server's
 * response headers change nothing. `recv-headers`: the peer's first or final header block (request,
 * or response headers after any 1xx); `recv-informational`: a 1xx response; `recv-data`: a DATA frame
 * (no change, but refused where not allowed); `send-end` / `recv-end`: END_STREAM either way;
 * `reset`: RST_STREAM either way, or the connection's end.
 */
export type StreamEvent =
  "send-headers" | "send-end" | "recv-headers" | "recv-informational" | "recv-data" | "recv-end" | "reset";

/** Why an event is refused: the code of the stream error it calls for (§5.1, §8.1.1). */
export type StreamRefusal = "PROTOCOL_ERROR" | "STREAM_CLOSED";

/** The state after `event` in `state`, or the stream error it is. */
export function streamTransition(state: StreamState, event: StreamEvent): StreamState | StreamRefusal {
  if (event === "reset") return "closed";
  switch (state) {
    case "idle":
      if (event === "send-headers") return "open-awaiting-headers";
      // A server's stream starts with the client's header block.
      if (event === "recv-headers") return "open";
      return "PROTOCOL_ERROR";
    case "open-awaiting-headers":
    case "half-closed-local-awaiting-headers": {
      const halfClosed = state === "half-closed-local-awaiting-headers";
      if (event === "recv-headers") return halfClosed ? "half-closed-local" : "open";
      if (event === "recv-informational") return state;
      if (event === "send-end") return halfClosed ? "STREAM_CLOSED" : "half-closed-local-awaiting-headers";
      if (event === "send-headers") return state;
      // DATA or END_STREAM before the response headers: a malformed response (§8.1).
      return "PROTOCOL_ERROR";
    }
    case "open":
      if (event === "send-end") return "half-closed-local";
      if (event === "recv-end") return "half-closed-remote";
      if (event === "recv-data" || event === "send-headers") return state;
      // A header block after the first one must be trailers, which end the stream (§8.1).
      return "PROTOCOL_ERROR";
    case "half-closed-local":
      if (event === "recv-end") return "closed";
      if (event === "recv-data") return state;
      if (event === "send-end" || event === "send-headers") return "STREAM_CLOSED";
      return "PROTOCOL_ERROR";
    case "half-closed-remote":
      if (event === "send-end") return "closed";
      if (event === "send-headers") return state;
      // §5.1: anything but WINDOW_UPDATE, PRIORITY or RST_STREAM is a stream error STREAM_CLOSED.
      return "STREAM_CLOSED";
    case "closed":
      return "STREAM_CLOSED";
  }
}

/** True for the states in which the peer may still send (its headers, DATA, trailers). */
export function remoteOpen(state: StreamState): boolean {
  return (
    state === "idle" ||
    state === "open" ||
    state === "open-awaiting-headers" ||
    state === "half-closed-local" ||
    state === "half-closed-local-awaiting-headers"
  );
}

/** True for the states in which we may still send (our headers, DATA, trailers). */
export function localOpen(state: StreamState): boolean {
  return (
    state === "open" ||
    state === "half-closed-remote" ||
    state === "open-awaiting-headers" ||
    state === "idle"
  );
}
