/**
 * PROXY protocol header encoder, versions 1 (text) and 2 (binary), after HAProxy's specification
 * (doc/proxy-protocol.txt). Written first on the upstream connection so the worker learns the client's
 * address. One header per connection, so encoding allocates freely.
 */
import { isIPv4, isIPv6 } from "node:net";

export type ProxyProtocolVersion = "v1" | "v2";

export interface ConnectionAddresses {
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly destinationAddress: string;
  readonly destinationPort: number;
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_VERSION_PROXY = 0x21; // version 2, command PROXY
const V2_TCP4 = 0x11;
const V2_TCP6 = 0x21;
const V2_UNSPEC = 0x00;

export function encodeProxyHeader(version: ProxyProtocolVersion, addrs: ConnectionAddresses): Buffer {
  return version === "v1" ? encodeV1(addrs) : encodeV2(addrs);
}

/** Both ends as one family: IPv4-mapped IPv6 pairs become IPv4, a mixed pair becomes IPv6. */
function family(addrs: ConnectionAddresses): { kind: 4 | 6 | 0; src: string; dst: string } {
  let src = unmap(addrs.sourceAddress);
  let dst = unmap(addrs.destinationAddress);
  if (isIPv4(src) && isIPv4(dst)) return { kind: 4, src, dst };
  if (isIPv4(src)) src = `::ffff:${src}`;
  if (isIPv4(dst)) dst = `::ffff:${dst}`;
  if (isIPv6(src) && isIPv6(dst)) return { kind: 6, src, dst };
  return { kind: 0, src, dst };
}

function unmap(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? (m[1] as string) : address;
}

export function encodeV1(addrs: ConnectionAddresses): Buffer {
  const f = family(addrs);
  if (f.kind === 0) return Buffer.from("PROXY UNKNOWN\r\n", "latin1");
  const proto = f.kind === 4 ? "TCP4" : "TCP6";
  return Buffer.from(
    `PROXY ${proto} ${f.src} ${f.dst} ${addrs.sourcePort} ${addrs.destinationPort}\r\n`,
    "latin1",
  );
}

export function encodeV2(addrs: ConnectionAddresses): Buffer {
  const f = family(addrs);
  const addrLen = f.kind === 4 ? 12 : f.kind === 6 ? 36 : 0;
  const out = Buffer.alloc(16 + addrLen);
  V2_SIGNATURE.copy(out, 0);
  out[12] = V2_VERSION_PROXY;
  out[13] = f.kind === 4 ? V2_TCP4 : f.kind === 6 ? V2_TCP6 : V2_UNSPEC;
  out.writeUInt16BE(addrLen, 14);
  if (f.kind === 4) {
    writeIPv4(out, 16, f.src);
    writeIPv4(out, 20, f.dst);
    out.writeUInt16BE(addrs.sourcePort, 24);
    out.writeUInt16BE(addrs.destinationPort, 26);
  } else if (f.kind === 6) {
    writeIPv6(out, 16, f.src);
    writeIPv6(out, 32, f.dst);
    out.writeUInt16BE(addrs.sourcePort, 48);
    out.writeUInt16BE(addrs.destinationPort, 50);
  }
  return out;
}

function writeIPv4(out: Buffer, offset: number, ip: string): void {
  const parts = ip.split(".");
  for (let i = 0; i < 4; i++) out[offset + i] = Number(parts[i]);
}

/** Expands `::` and an embedded IPv4 tail into 16 bytes. */
export function writeIPv6(out: Buffer, offset: number, ip: string): void {
  let text = ip;
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  const groups: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const p = (v4[1] as string).split(".").map(Number);
    text =
      text.slice(0, v4.index) +
      `${(((p[0] ?? 0) << 8) | (p[1] ?? 0)).toString(16)}:${(((p[2] ?? 0) << 8) | (p[3] ?? 0)).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const headGroups = head ? head.split(":").map((g) => parseInt(g, 16)) : [];
  const tailGroups = tail ? tail.split(":").map((g) => parseInt(g, 16)) : [];
  groups.push(...headGroups);
  for (let i = headGroups.length + tailGroups.length; i < 8; i++) groups.push(0);
  groups.push(...tailGroups);
  for (let i = 0; i < 8; i++) out.writeUInt16BE(groups[i] ?? 0, offset + i * 2);
}
