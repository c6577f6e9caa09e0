/** Malformed-message rules of RFC 9113 §8.1 (src/h2/h2-message-checks.ts) and the header-block bound. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HeaderBlockAssembler, headerBlockBound } from "../../src/h2/h2-header-block.js";
import { FrameReader } from "../../src/h2/h2-frame-reader.js";
import {
  BAD_CONTENT_LENGTH,
  NO_CONTENT_LENGTH,
  CONNECTION_SPECIFIC,
  contentLengthOf,
  hasConnectionSpecificField,
  isConnectionSpecific,
  parseContentLength,
  trailersMalformed,
} from "../../src/h2/h2-message-checks.js";
import { HeaderList } from "../../src/h2/hpack-header-list.js";
import { FRAME, continuationFrame, headersFrame, settingsFrame } from "../helpers/h2-frames-client.js";

function list(...pairs: [string, string][]): HeaderList {
  const l = new HeaderList();
  for (const [n, v] of pairs) l.add(n, v);
  return l;
}

/** Feeds `bytes` (after a SETTINGS frame, which a reader expects first) frame by frame to `assembler`. */
function assemble(assembler: HeaderBlockAssembler, ...bytes: Buffer[]): string[] {
  const reader = new FrameReader({ expectClientPreface: false });
  reader.push(Buffer.concat([settingsFrame(), ...bytes]));
  const statuses: string[] = [];
  for (let f = reader.next(); f !== null; f = reader.next()) {
    if (f.type !== FRAME.SETTINGS) statuses.push(assembler.add(f));
  }
  assert.equal(reader.error, null);
  return statuses;
}

describe("h2 message checks (RFC 9113 §8.1)", { timeout: 10_000 }, () => {
  it("§8.1 trailers with a pseudo-header field are malformed", () => {
    assert.equal(trailersMalformed(list(["grpc-status", "0"], ["grpc-message", ""])), false);
    assert.equal(trailersMalformed(list(["grpc-status", "0"], [":status", "200"])), true);
    assert.equal(trailersMalformed(list()), false);
  });

  it("§8.2.2 every connection-specific field is found, among names of its length, in a reused list", () => {
    const reused = new HeaderList();
    for (const name of CONNECTION_SPECIFIC) {
      // Names of the same lengths that are not connection-specific do not count.
      const decoys = ["user-agent", ":authority", "content-type", "grpc-status", "x".repeat(name.length)];
      reused.clear();
      for (const d of decoys) reused.add(d, "v");
      assert.equal(hasConnectionSpecificField(reused), false, `decoys for ${name}`);
      reused.add(name, "v");
      assert.equal(hasConnectionSpecificField(reused), true, name);
      reused.clear();
      assert.equal(hasConnectionSpecificField(reused), false, `${name} after clear`);
    }
    assert.equal(hasConnectionSpecificField(list(["x".repeat(10 + 32), "v"])), false);
  });

  it("§8.2.2 the name check (by length, then the name) agrees with the set, decoys of each length included", () => {
    for (const name of CONNECTION_SPECIFIC) {
      assert.equal(isConnectionSpecific(name), true, name);
      assert.equal(isConnectionSpecific("x".repeat(name.length)), false, `decoy of ${name.length}`);
      assert.equal(isConnectionSpecific(name.slice(1)), false, `${name} shortened`);
    }
    for (const name of ["user-agent", "te", "host", "content-type", "grpc-status", ""])
      assert.equal(isConnectionSpecific(name), false, name);
  });

  it("§8.1 a reused list forgets its pseudo-header fields on clear", () => {
    const reused = list([":status", "200"]);
    assert.equal(trailersMalformed(reused), true);
    reused.clear();
    reused.add("grpc-status", "0");
    assert.equal(trailersMalformed(reused), false);
  });

  it("§8.1.1 content-length: digits only, repeated values must agree", () => {
    assert.equal(contentLengthOf(list([":path", "/"])), NO_CONTENT_LENGTH);
    assert.equal(contentLengthOf(list(["content-length", "0"])), 0);
    assert.equal(contentLengthOf(list(["content-length", "1234"])), 1234);
    assert.equal(contentLengthOf(list(["content-length", "5"], ["content-length", "5"])), 5);
    assert.equal(contentLengthOf(list(["content-length", "5"], ["content-length", "6"])), BAD_CONTENT_LENGTH);
    for (const bad of ["", "-1", "1.5", " 1", "0x10", "1e3", "9".repeat(16)])
      assert.equal(parseContentLength(bad), BAD_CONTENT_LENGTH, JSON.stringify(bad));
  });

  it("one header-block bound: every block within it assembles, one octet more is too large", () => {
    const bound = headerBlockBound(100);
    assert.equal(bound, 100 * 2 + 16_384);
    const assembler = new HeaderBlockAssembler(bound);
    const part = Buffer.alloc(8192, 0x41);
    const fill = Buffer.alloc(bound - 2 * 8192, 0x42);
    assert.deepEqual(
      assemble(
        assembler,
        headersFrame(1, part, { endHeaders: false }),
        continuationFrame(1, part, false),
        continuationFrame(1, fill),
      ),
      ["partial", "partial", "complete"],
    );
    assert.equal(assembler.length, bound);
    assert.equal(assembler.streamId, 1);
    assert.deepEqual(
      assemble(
        assembler,
        headersFrame(3, part, { endHeaders: false, endStream: true }),
        continuationFrame(3, part, false),
        continuationFrame(3, Buffer.concat([fill, Buffer.from([0])])),
      ),
      ["partial", "partial", "too_large"],
    );
  });
});
