/**
 * What the runtime needs of a listener, whatever its protocol or engine: bind, report where it is
 * bound and how much it is serving, stop accepting (draining), and close what is left.
 */
import type { ListenerConfig } from "../config/config-schema.js";
import type { BindOptions } from "./server-address.js";

export interface Listener {
  readonly config: ListenerConfig;
  /** Binds; resolves with the bound `host:port`, rejects when the address cannot be bound. */
  listen(host: string, port: number, options?: BindOptions): Promise<string>;
  address(): string;
  /** Active connections (tcp) or streams (grpc). */
  readonly active: number;
  /** Stops accepting; work in flight continues (grpc: GOAWAY to every client session). */
  stopAccepting(): void;
  /** Resolves when nothing is left in flight. */
  idle(): Promise<void>;
  /** Ends everything now. */
  closeAll(): void;
  /** Takes a reloaded config with the same `listen` and `protocol` (and TLS / engine for grpc). */
  reconfigure(config: ListenerConfig): void;
  /** Ends work still running on endpoints a reload removed (called when their drain_timeout ran out). */
  closeRemoved(): void;
}

/** One listener as `/status` shows it; with worker threads, `active` is summed over them. */
export interface ListenerStatus {
  readonly name: string;
  readonly protocol: "tcp" | "grpc";
  readonly address: string;
  readonly engine: "http2" | "frames";
  /** Active connections (tcp) or streams (grpc). */
  readonly active: number;
}
