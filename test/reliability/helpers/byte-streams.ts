/**
 * The random part of the bad-input tests: byte streams (random chunks, inputs that look like other
 * protocols, pauses between writes) and how a client ends them, and one stream's round trip through
 * Fulcrum to the recording echo worker and back.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { until } from "./fulcrum-process.js";
import { closed, connectTo, type Received } from "./tcp-peers.js";

export type Ending = "half_close" | "close_after_echo" | "reset";

export interface StreamCase {
  readonly chunks: readonly Uint8Array[];
  /** Milliseconds to wait after each chunk (0 = write back to back, so chunks coalesce). */
  readonly gaps: readonly number[];
  readonly ending: Ending;
}

/** Inputs that mean something to some other layer; L4 must pass them like any other bytes. */
export const LOOKALIKES: readonly Uint8Array[] = [
  Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), // HTTP/2 preface
  Buffer.from("PROXY TCP4 10.0.0.1 10.0.0.2 1234 80\r\n"), // PROXY v1 header
  Buffer.from("0d0a0d0a000d0a515549540a2111000c0a0000010a000002", "hex"), // PROXY v2 header
  Buffer.from("160301020001", "hex"), // the start of a TLS ClientHello
  Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
  Buffer.alloc(1, 0),
  Buffer.alloc(4096, 0xff),
  Buffer.from("\r\n\r\n\n\n\r\r"),
];

export const streamCase: fc.Arbitrary<StreamCase> = fc
  .array(
    fc.oneof(
      { arbitrary: fc.uint8Array({ minLength: 1, maxLength: 1500 }), weight: 6 },
      { arbitrary: fc.uint8Array({ minLength: 1500, maxLength: 256 * 1024 }), weight: 1 },
      { arbitrary: fc.constantFrom(...LOOKALIKES), weight: 2 },
    ),
    { maxLength: 24 },
  )
  .chain((chunks) =>
    fc.record({
      chunks: fc.constant(chunks),
      gaps: fc.array(fc.constantFrom(0, 0, 0, 1, 5), { minLength: chunks.length, maxLength: chunks.length }),
      ending: fc.constantFrom<Ending>("half_close", "close_after_echo", "reset"),
    }),
  );

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

/**
 * One stream through Fulcrum: the bytes that reached the worker and the bytes that came back must
 * be the bytes sent (after a reset: a prefix of them), and the worker's connection must close.
 */
export async function roundTrip(port: number, received: Received[], c: StreamCase): Promise<void> {
  const seen = received.length;
  const sent = Buffer.concat(c.chunks);
  const socket = await connectTo(port);
  const back: Buffer[] = [];
  let backBytes = 0;
  let gotEnd = false;
  socket.on("data", (d: Buffer) => {
    back.push(d);
    backBytes += d.length;
  });
  socket.once("end", () => (gotEnd = true));
  socket.on("error", () => {});
  for (const [i, chunk] of c.chunks.entries()) {
    socket.write(chunk);
    const gap = c.gaps[i] ?? 0;
    if (gap > 0) await new Promise((r) => setTimeout(r, gap));
  }
  switch (c.ending) {
    case "half_close":
      socket.end();
      await closed(socket);
      assert.ok(gotEnd, "the echo ended with a FIN");
      break;
    case "close_after_echo":
      await until(() => backBytes >= sent.length || socket.closed, 20_000, "the whole echo");
      socket.destroy();
      break;
    case "reset":
      socket.resetAndDestroy();
      break;
  }
  await until(() => received.length > seen, 10_000, "the worker's connection to close");
  const atWorker = received[seen] as Received;
  const echoed = Buffer.concat(back);
  if (c.ending === "reset") {
    assert.ok(atWorker.bytes <= sent.length, "no byte invented");
    assert.equal(
      atWorker.sha256,
      sha(sent.subarray(0, atWorker.bytes)),
      "the worker got a prefix, unchanged",
    );
    assert.ok(echoed.equals(sent.subarray(0, echoed.length)), "the echo is a prefix, unchanged");
    return;
  }
  assert.equal(atWorker.bytes, sent.length, "every byte reached the worker");
  assert.equal(atWorker.sha256, sha(sent), "unchanged at the worker (SHA-256)");
  assert.equal(echoed.length, sent.length, "every byte came back");
  assert.equal(sha(echoed), sha(sent), "unchanged on the way back (SHA-256)");
  if (c.ending === "half_close") assert.ok(atWorker.ended, "the client's FIN reached the worker");
}
