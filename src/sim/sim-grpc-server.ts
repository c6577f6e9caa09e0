/**
 * Binding and stopping the grpc-js servers of the simulated workers, shared by every sim worker.
 */
import * as grpc from "@grpc/grpc-js";

/** Binds `server` without TLS; resolves with the bound port and `host:port`. */
export function bindSimServer(
  server: grpc.Server,
  host: string,
  port: number,
): Promise<{ port: number; address: string }> {
  const hostPart = host.includes(":") ? `[${host}]` : host;
  return new Promise((resolve, reject) => {
    server.bindAsync(`${hostPart}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
      if (err) return reject(err);
      resolve({ port: bound, address: `${hostPart}:${bound}` });
    });
  });
}

/** Graceful shutdown (open calls finish); after `graceMs` every remaining call and connection is cut. */
export function shutdownSimServer(server: grpc.Server, graceMs = 1000): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
