/**
 * The stream state machine of RFC 9113 §5.1 (with the §8.1 split before the peer's headers): every
 * state × event pair against a table written from the RFC's figure, so a change to one move shows.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  localOpen,
  remoteOpen,
  streamTransition,
  type StreamEvent,
  type StreamState,
} from "../../src/h2/h2-stream-state.js";

const STATES: readonly StreamState[] = [
  "idle",
  "open-awaiting-headers",
  "open",
  "half-closed-local-awaiting-headers",
  "half-closed-local",
  "half-closed-remote",
  "closed",
];
const EVENTS: readonly StreamEvent[] = [
  "send-headers",
  "send-end",
  "recv-headers",
  "recv-informational",
  "recv-data",
  "recv-end",
  "reset",
];

const P = "PROTOCOL_ERROR";
const S = "STREAM_CLOSED";

/** Rows: states in STATES order; columns: events in EVENTS order. */
const TABLE: Record<StreamState, readonly string[]> = {
  // §5.1 idle: a client sends HEADERS, a server receives them; anything else received is PROTOCOL_ERROR.
  idle: ["open-awaiting-headers", P, "open", P, P, P, "closed"],
  // Our request is out; DATA or END_STREAM before the response headers is a malformed response (§8.1).
  "open-awaiting-headers": [
    "open-awaiting-headers",
    "half-closed-local-awaiting-headers",
    "open",
    "open-awaiting-headers",
    P,
    P,
    "closed",
  ],
  // A second header block must end the stream (trailers), so "recv-headers" in open is refused.
  open: ["open", "half-closed-local", P, P, "open", "half-closed-remote", "closed"],
  "half-closed-local-awaiting-headers": [
    "half-closed-local-awaiting-headers",
    S,
    "half-closed-local",
    "half-closed-local-awaiting-headers",
    P,
    P,
    "closed",
  ],
  "half-closed-local": [S, S, P, P, "half-closed-local", "closed", "closed"],
  // §5.1 half-closed (remote): any frame but WINDOW_UPDATE, PRIORITY, RST_STREAM is STREAM_CLOSED.
  "half-closed-remote": ["half-closed-remote", "closed", S, S, S, S, "closed"],
  closed: [S, S, S, S, S, S, "closed"],
};

describe("h2 stream states (RFC 9113 §5.1)", { timeout: 10_000 }, () => {
  for (const state of STATES) {
    it(`from ${state}`, () => {
      const row = TABLE[state];
      EVENTS.forEach((event, i) => {
        assert.equal(streamTransition(state, event), row[i], `${state} + ${event}`);
      });
    });
  }

  it("the client's unary path and the server's, start to end", () => {
    const walk = (events: readonly StreamEvent[]): string => {
      let s: StreamState = "idle";
      for (const e of events) {
        const next = streamTransition(s, e);
        assert.ok(STATES.includes(next as StreamState), `${s} + ${e} → ${next}`);
        s = next as StreamState;
      }
      return s;
    };
    // Client: request with END_STREAM, a 100, the response headers, trailers.
    assert.equal(
      walk(["send-headers", "send-end", "recv-informational", "recv-headers", "recv-data", "recv-end"]),
      "closed",
    );
    // Server: request headers + END_STREAM, response headers, DATA, trailers.
    assert.equal(walk(["recv-headers", "recv-end", "send-headers", "send-end"]), "closed");
  });

  it("who may still send: localOpen / remoteOpen agree with the table", () => {
    for (const state of STATES) {
      const canSend = streamTransition(state, "send-end") !== S && state !== "closed";
      assert.equal(localOpen(state), canSend, `localOpen(${state})`);
      const row = TABLE[state];
      const canReceiveEnd = row[EVENTS.indexOf("recv-end")] !== S;
      assert.equal(remoteOpen(state), canReceiveEnd, `remoteOpen(${state})`);
    }
  });
});
