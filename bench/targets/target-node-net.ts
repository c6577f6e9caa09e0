/**
 * `node-net`, the floor of a Node TCP proxy: bench/peers/naive-pipe-proxy.ts (`pipe()` both ways, no
 * balancing or accounting) as one child on the Node 22 of the npm script, one listener per TCP
 * listener spec. It serves the TCP rows only: a pipe would carry gRPC connection by connection, not
 * stream by stream, so it is no peer there.
 */
import { join } from "node:path";
import { listeningAddress, portOf, startChild } from "../proc/proc-children.js";
import { childTarget, repoRoot, type ListenerSpec, type RunningTarget } from "./target.js";

export async function startNodeNet(listeners: readonly ListenerSpec[]): Promise<RunningTarget> {
  const tcp = listeners.filter((l) => l.protocol === "tcp");
  const upstreamPorts = tcp.map((l) => {
    if (l.upstreams.length !== 1) throw new Error(`node-net: listener ${l.name} needs exactly one upstream`);
    return portOf(l.upstreams[0] ?? "");
  });
  const proxy = join(repoRoot(), "dist", "bench", "peers", "naive-pipe-proxy.js");
  const child = startChild("node-net", process.execPath, [proxy, ...upstreamPorts.map(String)]);
  const byUpstream = new Map<number, number>();
  await child.line((line) => {
    const address = listeningAddress(line);
    if (address === undefined) return undefined;
    byUpstream.set((JSON.parse(line) as { upstream: number }).upstream, portOf(address));
    return byUpstream.size === new Set(upstreamPorts).size ? true : undefined;
  });
  const ports = new Map(tcp.map((l, i) => [l.name, byUpstream.get(upstreamPorts[i] ?? 0) ?? 0]));
  return childTarget("node-net", child, ports);
}
