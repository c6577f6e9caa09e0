/**
 * A simulated TCP worker in its own process, so a test can SIGKILL or SIGSTOP it for real.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const SIM_MAIN = fileURLToPath(new URL("../../src/sim/sim-main.js", import.meta.url));

export interface ChildWorker {
  readonly child: ChildProcess;
  readonly port: number;
  readonly address: string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnTcpWorker(name: string, listen = "127.0.0.1:0"): Promise<ChildWorker> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SIM_MAIN, "tcp", "--name", name, "--listen", listen], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      const nl = out.indexOf("\n");
      if (nl < 0) return;
      child.stdout?.off("data", onData);
      const line = JSON.parse(out.slice(0, nl)) as { address: string };
      const port = Number(/:(\d+)$/.exec(line.address)?.[1]);
      resolve({
        child,
        port,
        address: line.address,
        kill: (signal = "SIGKILL") =>
          new Promise((r) => {
            if (child.exitCode !== null || child.signalCode !== null) return r();
            child.once("exit", () => r());
            child.kill(signal);
          }),
      });
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`worker ${name} exited with ${code} before listening`)));
  });
}
