/**
 * HAProxy 2.6 as a target: a config generated from bench/peers/haproxy*.cfg (1 thread, no splicing),
 * started as `haproxy -f CFG -db` in the foreground on free loopback ports.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startChild } from "../proc/proc-children.js";
import { freePort } from "../proc/proc-cpu.js";
import { TOOLS } from "../proc/proc-debian.js";
import {
  childTarget,
  peerTemplate,
  waitForPort,
  type ListenerSpec,
  type Policy,
  type RunningTarget,
  type StartOptions,
} from "./target.js";

const BALANCE: Partial<Record<Policy, string>> = {
  round_robin: "roundrobin",
  weighted_round_robin: "roundrobin",
  least_connections: "leastconn",
  random: "random",
  ip_hash: "source",
};

export function haproxyBalance(policy: Policy): string {
  const b = BALANCE[policy];
  if (b === undefined) throw new Error(`haproxy: no equivalent of policy ${policy}`);
  return b;
}

export async function startHaproxy(
  listeners: readonly ListenerSpec[],
  options: StartOptions,
): Promise<RunningTarget> {
  const ports = new Map<string, number>();
  let cfg = peerTemplate("haproxy.cfg", { THREADS: options.threads ?? 1 });
  for (const l of listeners) {
    const port = await freePort();
    ports.set(l.name, port);
    const proto = l.protocol === "grpc" ? " proto h2" : "";
    const maxconn = l.caps ? ` maxconn ${l.caps.perEndpoint}` : "";
    const rules = l.caps
      ? [
          `  timeout queue ${l.caps.queueTimeoutMs}ms`,
          `  http-request set-priority-class req.hdr(${l.caps.priorityHeader}) if { req.hdr(${l.caps.priorityHeader}) -m found }`,
        ]
      : [];
    const servers = [...rules, ...l.upstreams.map((a, i) => `  server w${i} ${a}${proto}${maxconn}`)].join(
      "\n",
    );
    cfg += peerTemplate(`haproxy-${l.protocol}.cfg`, {
      NAME: l.name,
      PORT: port,
      BALANCE: haproxyBalance(l.policy ?? "round_robin"),
      SERVERS: servers,
    });
  }
  const file = join(options.dir, "haproxy.cfg");
  writeFileSync(file, cfg);
  const child = startChild("haproxy", TOOLS.haproxy.binary, ["-f", file, "-db"]);
  const failed = child.exited().then((code) => {
    throw new Error(`haproxy exited (${code}):\n${child.output().slice(-2000)}`);
  });
  failed.catch(() => undefined);
  await Promise.race([Promise.all([...ports.values()].map((p) => waitForPort(p))), failed]);
  return childTarget("haproxy", child, ports);
}
