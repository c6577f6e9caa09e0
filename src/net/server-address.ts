/**
 * Binding and naming the address of any node server (net, http, http2): one place for the
 * `host:port` / `[v6]:port` form that logs, `/status` and tests read.
 */
import type { AddressInfo } from "node:net";

interface Bindable {
  listen(options: { host: string; port: number; reusePort?: boolean }, callback: () => void): unknown;
  address(): AddressInfo | string | null;
  on(event: "error", listener: (err: Error) => void): unknown;
  once(event: "error", listener: (err: Error) => void): unknown;
  off(event: "error", listener: (err: Error) => void): unknown;
}

/** How a listener binds: `reusePort` lets every worker thread bind the same address (Node ≥ 22.12). */
export interface BindOptions {
  readonly reusePort?: boolean | undefined;
}

/**
 * Binds `server`; resolves with the bound address, rejects with the bind error (EADDRINUSE, …).
 * `onLaterError` hears the server's errors once it is bound: a bind failure is the caller's to
 * report (one path-named line), not a logged error with a stack trace.
 */
export function bindServer(
  server: Bindable,
  host: string,
  port: number,
  options: BindOptions = {},
  onLaterError?: (err: Error) => void,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once("error", onError);
    server.listen({ host, port, ...(options.reusePort ? { reusePort: true } : {}) }, () => {
      server.off("error", onError);
      if (onLaterError) server.on("error", onLaterError);
      resolve(serverAddress(server));
    });
  });
}

export function serverAddress(server: Pick<Bindable, "address">): string {
  const a = server.address();
  if (!a || typeof a === "string") return String(a);
  return a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
