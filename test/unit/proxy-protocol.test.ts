import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeV1, encodeV2 } from "../../src/tcp/proxy-protocol.js";

const SIG = "0d0a0d0a000d0a515549540a";

describe("proxy protocol encoder", { timeout: 10_000 }, () => {
  it("v1 for IPv4, IPv6 and IPv4-mapped addresses", () => {
    const cases = [
      [
        {
          sourceAddress: "127.0.0.5",
          sourcePort: 40000,
          destinationAddress: "127.0.0.1",
          destinationPort: 9000,
        },
        "PROXY TCP4 127.0.0.5 127.0.0.1 40000 9000\r\n",
      ],
      [
        { sourceAddress: "::1", sourcePort: 1, destinationAddress: "::1", destinationPort: 2 },
        "PROXY TCP6 ::1 ::1 1 2\r\n",
      ],
      [
        {
          sourceAddress: "::ffff:10.1.2.3",
          sourcePort: 5,
          destinationAddress: "::ffff:10.0.0.1",
          destinationPort: 6,
        },
        "PROXY TCP4 10.1.2.3 10.0.0.1 5 6\r\n",
      ],
    ] as const;
    for (const [addrs, text] of cases) assert.equal(encodeV1(addrs).toString("latin1"), text);
  });

  it("v2 for IPv4: signature, PROXY command, TCP4, 12 address bytes", () => {
    const b = encodeV2({
      sourceAddress: "127.0.0.5",
      sourcePort: 0x1234,
      destinationAddress: "10.0.0.1",
      destinationPort: 80,
    });
    assert.equal(b.toString("hex"), `${SIG}2111000c7f0000050a000001` + "12340050");
  });

  it("v2 for IPv6 expands :: and keeps ports", () => {
    const b = encodeV2({
      sourceAddress: "fe80::1:2",
      sourcePort: 1,
      destinationAddress: "::1",
      destinationPort: 2,
    });
    assert.equal(b.length, 16 + 36);
    assert.equal(b.subarray(0, 16).toString("hex"), `${SIG}21210024`);
    assert.equal(b.subarray(16, 32).toString("hex"), "fe800000000000000000000000010002");
    assert.equal(b.subarray(32, 48).toString("hex"), "00000000000000000000000000000001");
    assert.equal(b.readUInt16BE(48), 1);
    assert.equal(b.readUInt16BE(50), 2);
  });

  it("v2 for a v4 client on a v6 socket maps the v4 side", () => {
    const b = encodeV2({
      sourceAddress: "10.0.0.9",
      sourcePort: 1,
      destinationAddress: "::1",
      destinationPort: 2,
    });
    assert.equal(b[13], 0x21);
    assert.equal(b.subarray(16, 32).toString("hex"), "00000000000000000000ffff0a000009");
  });
});
