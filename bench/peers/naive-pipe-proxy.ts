/**
 * The reference point for Fulcrum's TCP path: the textbook Node proxy, `a.pipe(b); b.pipe(a)`, with no
 * balancing, health or accounting — what any `node:net` relay pays per connection and per byte before
 * it does anything of its own. `node naive-pipe-proxy.js UPSTREAM_PORT [UPSTREAM_PORT…]`: one listener
 * per upstream, each announced by a `listening` line naming its upstream.
 */
import { connect, createServer } from "node:net";

for (const arg of process.argv.slice(2)) {
  const upstreamPort = Number(arg);
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ host: "127.0.0.1", port: upstreamPort, allowHalfOpen: true });
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  server.listen(0, "127.0.0.1", () => {
    const a = server.address() as { port: number };
    const line = { msg: "listening", address: `127.0.0.1:${a.port}`, upstream: upstreamPort };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  });
}
