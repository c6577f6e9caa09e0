/**
 * Starts a target by name: `direct` needs no process; Fulcrum, HAProxy, NGINX and the `node-net` pipe
 * proxy each run as one child (see target-fulcrum.ts, target-haproxy.ts, target-nginx.ts,
 * target-node-net.ts).
 */
import { portOf } from "../proc/proc-children.js";
import type { ListenerSpec, RunningTarget, StartOptions, TargetName } from "./target.js";
import { startFulcrum } from "./target-fulcrum.js";
import { startHaproxy } from "./target-haproxy.js";
import { startNginx } from "./target-nginx.js";
import { startNodeNet } from "./target-node-net.js";

export async function startTarget(
  name: TargetName,
  listeners: readonly ListenerSpec[],
  options: StartOptions,
): Promise<RunningTarget> {
  switch (name) {
    case "direct":
      return startDirect(listeners);
    case "fulcrum":
      return startFulcrum(listeners, options);
    case "fulcrum-http2":
      return startFulcrum(listeners, options, "http2");
    case "fulcrum-frames":
      return startFulcrum(listeners, options, "frames");
    case "fulcrum-access-log":
      return startFulcrum(listeners, options, undefined, true);
    case "fulcrum-baseline":
      if (!options.baselineCli) throw new Error("target fulcrum-baseline needs --baseline path/to/cli.js");
      return startFulcrum(listeners, options, undefined, false, options.baselineCli);
    case "haproxy":
      return startHaproxy(listeners, options);
    case "nginx":
      return startNginx(listeners, options);
    case "node-net":
      return startNodeNet(listeners);
  }
}

function startDirect(listeners: readonly ListenerSpec[]): RunningTarget {
  const ports = new Map<string, number>();
  for (const l of listeners) {
    if (l.upstreams.length !== 1) throw new Error(`direct: listener ${l.name} needs exactly one upstream`);
    ports.set(l.name, portOf(l.upstreams[0] ?? ""));
  }
  return {
    name: "direct",
    pid: undefined,
    port: (listener) => ports.get(listener) ?? 0,
    cpuSeconds: () => 0,
    stop: () => Promise.resolve(),
  };
}
