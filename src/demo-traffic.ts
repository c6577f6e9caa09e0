/**
 * The demo's built-in load: Triton `ModelInfer` calls to the gRPC listener over ONE long-lived HTTP/2
 * connection (one grpc-js channel), so the status page shows per-stream balancing: a few calls/s up
 * to `ratePerSecond`, never more than `concurrency` in flight. Answers are not checked (the status
 * page and `/metrics` show them); a failed call is simply the next one's turn.
 */
import * as grpc from "@grpc/grpc-js";
import { tritonService } from "./protos/inference-protos.js";

export interface DemoTrafficOptions {
  /** The gRPC listener, `host:port`. */
  readonly address: string;
  /** The model every call names. */
  readonly model: string;
  /** Calls started per second at most (default 100). */
  readonly ratePerSecond?: number | undefined;
  /** Calls in flight at most (default 8). */
  readonly concurrency?: number | undefined;
}

type Callback = (err: grpc.ServiceError | null) => void;
interface InferClient extends grpc.Client {
  ModelInfer(request: object, options: grpc.CallOptions, callback: Callback): grpc.ClientUnaryCall;
}

/** Per tick the pacer starts at most one call: 10 ms ticks allow up to 100 calls/s. */
const TICK_MS = 10;

export class DemoTraffic {
  /** Calls answered (any status) since start. */
  completed = 0;
  private readonly client: InferClient;
  private readonly inFlight = new Set<grpc.ClientUnaryCall>();
  private readonly timer: NodeJS.Timeout;
  private stopped = false;
  private credit = 0;

  constructor(private readonly options: DemoTrafficOptions) {
    const Client = tritonService();
    this.client = new Client(options.address, grpc.credentials.createInsecure()) as unknown as InferClient;
    const perTick = (Math.min(100, options.ratePerSecond ?? 100) * TICK_MS) / 1000;
    this.timer = setInterval(() => {
      this.credit = Math.min(1, this.credit + perTick);
      if (this.credit >= 1 && this.inFlight.size < (options.concurrency ?? 8)) {
        this.credit -= 1;
        this.send();
      }
    }, TICK_MS);
  }

  /** Stops sending; resolves once the calls in flight have ended (cancelled after 1 s) and the connection is closed. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    const settled = new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (this.inFlight.size > 0) return;
        clearInterval(check);
        resolve();
      }, TICK_MS);
    });
    const cancel = setTimeout(() => {
      for (const call of this.inFlight) call.cancel();
    }, 1000);
    await settled;
    clearTimeout(cancel);
    this.client.close();
  }

  private send(): void {
    const call = this.client.ModelInfer(
      { model_name: this.options.model, raw_input_contents: [Buffer.from("demo")] },
      { deadline: Date.now() + 5000 },
      () => {
        this.inFlight.delete(call);
        this.completed++;
      },
    );
    this.inFlight.add(call);
  }
}
