/**
 * A real grpc-js server with grpc.health.v1 `Check` and `Watch` (grpc/grpc doc/health-checking.md:
 * Watch sends the current status at once, then one update per change) whose status a test flips,
 * counting what reached it: Check calls, Watch calls, updates sent, streams open now.
 */
import * as grpc from "@grpc/grpc-js";
import { healthServiceDefinition, type HealthStatus } from "./grpc-test-worker.js";

type WatchCall = grpc.ServerWritableStream<{ service: string }, { status: HealthStatus }>;

export class GrpcHealthWorker {
  private readonly server = new grpc.Server();
  private readonly streams = new Set<WatchCall>();
  private status: HealthStatus = "SERVING";
  private port = 0;
  checks = 0;
  watches = 0;
  /** Watch updates written, over every stream. */
  updates = 0;

  /** `watch: false` answers Watch with UNIMPLEMENTED, as a worker that implements only Check. */
  constructor(options: { readonly watch?: boolean } = {}) {
    const watch = options.watch ?? true;
    this.server.addService(healthServiceDefinition(), {
      Check: (
        _call: grpc.ServerUnaryCall<{ service: string }, { status: HealthStatus }>,
        cb: grpc.sendUnaryData<{ status: HealthStatus }>,
      ) => {
        this.checks++;
        cb(null, { status: this.status });
      },
      Watch: (call: WatchCall) => {
        this.watches++;
        if (!watch) {
          call.emit("error", { code: grpc.status.UNIMPLEMENTED, details: "Watch is not implemented" });
          return;
        }
        this.streams.add(call);
        call.on("cancelled", () => this.streams.delete(call));
        call.on("close", () => this.streams.delete(call));
        if (!this.silent) this.send(call);
      },
    });
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Watch streams open now. */
  get open(): number {
    return this.streams.size;
  }

  async listen(): Promise<void> {
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
  }

  /**
   * Sets the status; a change is sent as one update on every open stream, an unchanged status is not
   * (as grpc-go and grpc-java servers do: Watch reports changes).
   */
  setStatus(status: HealthStatus): void {
    if (status === this.status) return;
    this.status = status;
    for (const call of this.streams) this.send(call);
  }

  /** Stops answering new Watch calls (a worker that accepts a stream and never sends on it). */
  silent = false;

  /** Ends every open Watch stream with OK (a server shutting its streams). */
  endStreams(): void {
    for (const call of [...this.streams]) {
      this.streams.delete(call);
      call.end();
    }
  }

  async close(): Promise<void> {
    this.endStreams();
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.server.forceShutdown();
  }

  private send(call: WatchCall): void {
    this.updates++;
    call.write({ status: this.status });
  }
}
