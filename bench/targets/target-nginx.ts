/**
 * NGINX 1.22 as a target: a config generated from bench/peers/nginx*.conf (1 worker process; TCP via
 * the stream module, gRPC via grpc_pass), started as `nginx -p DIR -c CONF -g 'daemon off;'`. Also the
 * NGINX HTTP backend the wrk rows need (bench/peers/nginx-http-backend.conf).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startChild, type Child } from "../proc/proc-children.js";
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
  round_robin: "",
  weighted_round_robin: "",
  least_connections: "least_conn;",
  random: "random;",
  ip_hash: "hash $remote_addr consistent;",
};

async function runNginx(name: string, dir: string, conf: string, ports: readonly number[]): Promise<Child> {
  mkdirSync(join(dir, "tmp"), { recursive: true });
  const file = join(dir, "nginx.conf");
  writeFileSync(file, conf);
  const child = startChild(name, TOOLS.nginx.binary, ["-p", dir, "-c", file, "-g", "daemon off;"]);
  const failed = child.exited().then((code) => {
    throw new Error(`${name} exited (${code}):\n${child.output().slice(-2000)}`);
  });
  failed.catch(() => undefined);
  await Promise.race([Promise.all(ports.map((p) => waitForPort(p))), failed]);
  return child;
}

export async function startNginx(
  listeners: readonly ListenerSpec[],
  options: StartOptions,
): Promise<RunningTarget> {
  const ports = new Map<string, number>();
  const stream: string[] = [];
  const http: string[] = [];
  for (const l of listeners) {
    const port = await freePort();
    ports.set(l.name, port);
    const balance = BALANCE[l.policy ?? "round_robin"];
    if (balance === undefined) throw new Error(`nginx: no equivalent of policy ${l.policy}`);
    const vars = {
      NAME: l.name,
      PORT: port,
      BALANCE: balance,
      SERVERS: l.upstreams.map((a) => `    server ${a};`).join("\n"),
    };
    (l.protocol === "tcp" ? stream : http).push(peerTemplate(`nginx-${l.protocol}.conf`, vars));
  }
  const dir = join(options.dir, "nginx");
  const conf = peerTemplate("nginx.conf", {
    STREAM: stream.join("\n"),
    HTTP: http.join("\n"),
    THREADS: options.threads ?? 1,
  });
  const child = await runNginx("nginx", dir, conf, [...ports.values()]);
  return childTarget("nginx", child, ports);
}

/** The HTTP/1.1 backend of the wrk rows; resolves with its `127.0.0.1:PORT`. */
export async function startHttpBackend(dir: string): Promise<{ address: string; stop(): Promise<void> }> {
  const port = await freePort();
  const conf = peerTemplate("nginx-http-backend.conf", { PORT: port });
  const child = await runNginx("http-backend", join(dir, "http-backend"), conf, [port]);
  return { address: `127.0.0.1:${port}`, stop: () => child.stop() };
}
