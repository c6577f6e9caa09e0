/**
 * Runs one simulated worker as its own process, for tests that kill or stop a worker for real:
 * `node sim-main.js tcp --name NAME [--listen 127.0.0.1:0]`. Prints one JSON line with the bound
 * address, then serves until killed.
 */
import { parseArgs } from "node:util";
import { splitAddress } from "../balancer/endpoint-set.js";
import { SimTcpWorker } from "./sim-tcp-worker.js";

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      name: { type: "string", default: "worker" },
      listen: { type: "string", default: "127.0.0.1:0" },
    },
  });
  if (positionals[0] !== "tcp") {
    process.stderr.write("usage: sim-main tcp --name NAME [--listen HOST:PORT]\n");
    process.exit(2);
  }
  const where = splitAddress(values.listen);
  if (!where) {
    process.stderr.write(`--listen: expected host:port, got ${JSON.stringify(values.listen)}\n`);
    process.exit(2);
  }
  const worker = new SimTcpWorker({ name: values.name });
  const bound = await worker.listen(where.host, where.port);
  process.stdout.write(
    `${JSON.stringify({ msg: "listening", worker: values.name, address: bound.address })}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
