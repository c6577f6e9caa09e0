/**
 * Splices two connected sockets: bytes flow both ways with backpressure (stream.pipe), a FIN in one
 * direction is passed on as a FIN (half-close: a reply sent after the client's FIN still arrives), an
 * error or reset on either side tears down both, and `released` runs exactly once, after both sockets
 * have closed. A bare `a.pipe(b); b.pipe(a)` leaks both sockets when one of them resets.
 */
import type { Socket } from "node:net";

export function spliceConnections(
  client: Socket,
  upstream: Socket,
  released: () => void,
  /** Called once with true when the upstream side reset or failed (for the resets metric). */
  failed: (upstreamFault: boolean) => void,
): void {
  let closedCount = 0;
  let torn = false;

  const teardown = (upstreamFault: boolean, err: NodeJS.ErrnoException | undefined): void => {
    if (torn) return;
    torn = true;
    failed(upstreamFault);
    // Pass a reset on as a reset, so the peer learns the connection was aborted, not finished.
    const reset = err?.code === "ECONNRESET";
    const other = upstreamFault ? client : upstream;
    const self = upstreamFault ? upstream : client;
    if (reset && !other.destroyed) other.resetAndDestroy();
    else other.destroy();
    self.destroy();
  };

  const onClose = (): void => {
    if (++closedCount === 2) released();
  };

  client.on("error", (err: NodeJS.ErrnoException) => teardown(false, err));
  upstream.on("error", (err: NodeJS.ErrnoException) => teardown(true, err));
  client.once("close", () => {
    onClose();
    // The client is gone both ways: nothing more can be delivered to it.
    if (!upstream.destroyed && !client.readableEnded) upstream.destroy();
  });
  upstream.once("close", () => {
    onClose();
    if (!client.destroyed && !upstream.readableEnded) client.destroy();
  });

  client.pipe(upstream);
  upstream.pipe(client);
  client.resume();
}
