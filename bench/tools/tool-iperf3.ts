/**
 * iperf3 for TCP bulk throughput: one server (the worker) for the whole run, one client run per
 * measurement with `-P` parallel streams and JSON output; throughput is what the server received.
 */
import { startChild } from "../proc/proc-children.js";
import { freePort } from "../proc/proc-cpu.js";
import { TOOLS } from "../proc/proc-debian.js";
import { waitForPort } from "../targets/target.js";
import type { ToolResult } from "./tool-result.js";
import { runTool } from "./tool-run.js";

export async function startIperf3Server(): Promise<{ address: string; stop(): Promise<void> }> {
  const port = await freePort();
  const child = startChild("iperf3-server", TOOLS.iperf3.binary, [
    "-s",
    "-B",
    "127.0.0.1",
    "-p",
    String(port),
  ]);
  await waitForPort(port);
  return { address: `127.0.0.1:${port}`, stop: () => child.stop() };
}

interface Iperf3Json {
  error?: string;
  end?: { sum_received?: { bytes: number; seconds: number } };
}

/** Runs of a measurement an iperf3 client makes when the server was between two tests. */
const IPERF3_ATTEMPTS = 3;

/**
 * Whether an iperf3 client error means the server was not listening for a moment: an iperf3 server
 * closes and opens its listening socket again after every test, so a client that comes right after
 * the previous one can be refused or reset (esnet/iperf pull request 2066), or told the server is
 * still busy with it. Worth another try.
 */
export function iperf3ServerBetweenTests(error: string): boolean {
  return /unable to (connect to server|receive control message|send cookie)|connection refused|reset by peer|server is busy/i.test(
    error,
  );
}

export async function iperf3(port: number, seconds: number, streams: number): Promise<ToolResult> {
  const args = ["-c", "127.0.0.1", "-p", String(port), "-t", String(seconds), "-P", String(streams), "-J"];
  for (let attempt = 1; ; attempt++) {
    const out = await runTool("iperf3", TOOLS.iperf3.binary, args, (seconds + 20) * 1000);
    const j = JSON.parse(out) as Iperf3Json;
    const sum = j.end?.sum_received;
    if (j.error && attempt < IPERF3_ATTEMPTS && iperf3ServerBetweenTests(j.error)) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      continue;
    }
    if (j.error || !sum) throw new Error(`iperf3: ${j.error ?? "no end.sum_received in its JSON"}`);
    return { requests: 0, bytes: sum.bytes, seconds: sum.seconds, errors: 0 };
  }
}
