/**
 * Starts a GrpcTestWorker in a child process (see grpc-child-worker-main.ts) so that a test can kill
 * it with SIGKILL: the kernel then closes its sockets with no GOAWAY and no trailers.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ChildWorker } from "./child-worker.js";

const MAIN = fileURLToPath(new URL("./grpc-child-worker-main.js", import.meta.url));

export function spawnGrpcWorker(name: string, options: { delayMs?: number } = {}): Promise<ChildWorker> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [MAIN, "--name", name, "--delay-ms", String(options.delayMs ?? 0)],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    const onExit = (code: number | null): void =>
      reject(new Error(`grpc worker ${name} exited with ${code} before serving`));
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      const nl = out.indexOf("\n");
      if (nl < 0) return;
      child.stdout?.off("data", onData);
      child.off("exit", onExit);
      const { address } = JSON.parse(out.slice(0, nl)) as { address: string };
      resolve({
        child,
        address,
        port: Number(/:(\d+)$/.exec(address)?.[1]),
        kill: (signal = "SIGKILL") =>
          new Promise((r) => {
            if (child.exitCode !== null || child.signalCode !== null) return r();
            child.once("exit", () => r());
            child.kill(signal);
          }),
      });
    };
    child.stdout?.on("data", onData);
    child.once("exit", onExit);
  });
}
