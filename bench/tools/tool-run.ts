/** Runs a load generator binary to completion through the child registry, collecting its stdout. */
import { startChild } from "../proc/proc-children.js";

export async function runTool(
  name: string,
  binary: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<string> {
  const child = startChild(name, binary, args);
  let stdout = "";
  child.process.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  const timer = setTimeout(() => void child.stop(1000), timeoutMs);
  const code = await child.exited();
  clearTimeout(timer);
  if (code !== 0) {
    throw new Error(`${name} ${args.join(" ")} exited ${code}:\n${child.output().slice(-3000)}`);
  }
  return stdout;
}
