/**
 * Settings of the `frames` engine, on both sides of the proxy. Windows match the `http2` engine's
 * (4 MiB per stream, 32 MiB per connection: large tensors move at full speed on loopback and fast
 * networks), and they also bound memory: a stream never holds more than its window of DATA in
 * Fulcrum, because the window is given back only for bytes written on to the other side.
 */
export const FRAMES_TUNING = {
  streamWindow: 4 * 1024 * 1024,
  connectionWindow: 32 * 1024 * 1024,
  /** Advertised to clients; an upstream's own limit is honoured by opening more connections. */
  maxConcurrentStreams: 1000,
  /** Control frames (PING, SETTINGS, RST_STREAM, PRIORITY, empty DATA/CONTINUATION) a peer may burst… */
  floodBurst: 2000,
  /** …and send per second, sustained; beyond it: GOAWAY ENHANCE_YOUR_CALM. */
  floodPerSecond: 1000,
  /**
   * Octets queued for a socket past which DATA waits for it to drain: bounds what a slow reader
   * costs (the rest waits upstream, held back by flow control) while keeping the pipe full.
   */
  socketBacklog: 256 * 1024,
  /** Octets waiting in a socket that the peer does not read, past which its control frames end it. */
  maxControlBacklog: 1024 * 1024,
  /** How long the final GOAWAY of a drain waits for the PING round trip after the first one. */
  goawayPingTimeoutMs: 1000,
  /** Largest stream id, for the first GOAWAY of a drain. */
  maxStreamId: 2 ** 31 - 1,
} as const;
