/**
 * The reference point for Fulcrum's TCP path: the textbook Node proxy, `a.pipe(b); b.pipe(a)`, with no
 * balancing, health or accounting. `node naive-pipe-proxy.js UPSTREAM_PORT`; prints a `listening` line.
 */
import { connect, createServer } from "node:net";

const upstreamPort = Number(process.argv[2]);
const server = createServer({ allowHalfOpen: true }, (client) => {
  const upstream = connect({ host: "127.0.0.1", port: upstreamPort, allowHalfOpen: true });
  client.pipe(upstream);
  upstream.pipe(client);
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
});
server.listen(0, "127.0.0.1", () => {
  const a = server.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ msg: "listening", address: `127.0.0.1:${a.port}` })}\n`);
});
