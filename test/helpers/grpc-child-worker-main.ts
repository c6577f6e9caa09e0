/**
 * A GrpcTestWorker in its own process, so a test can SIGKILL it for real. Usage:
 * `node grpc-child-worker-main.js --name NAME [--delay-ms N]`. Prints one JSON line
 * `{"address":"127.0.0.1:PORT"}` once it serves, then runs until killed.
 */
import { GrpcTestWorker } from "./grpc-test-worker.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const worker = new GrpcTestWorker({ name: arg("name") ?? "worker", delayMs: Number(arg("delay-ms") ?? 0) });
await worker.listen("127.0.0.1", 0);
process.stdout.write(JSON.stringify({ address: worker.address }) + "\n");
process.on("SIGTERM", () => {
  void worker.close().then(() => process.exit(0));
});
