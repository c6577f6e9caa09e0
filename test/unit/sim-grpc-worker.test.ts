import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { constants as h2 } from "node:http2";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { healthService } from "../../src/protos/health-proto.js";
import {
  SimGrpcWorker,
  simWorkerClient,
  type SimGrpcWorkerOptions,
  type SimWorkerClient,
} from "../../src/sim/sim-grpc-worker.js";

interface Reply {
  readonly err: grpc.ServiceError | null;
  readonly value: Buffer | undefined;
  readonly worker: string | undefined;
}

interface HealthReply {
  readonly status: string;
}

interface HealthClient extends grpc.Client {
  Check(request: { service: string }, callback: grpc.requestCallback<HealthReply>): grpc.ClientUnaryCall;
  Watch(request: { service: string }): grpc.ClientReadableStream<HealthReply>;
}

function unary(client: SimWorkerClient, method: "Infer" | "Echo", request: Buffer): Promise<Reply> {
  return new Promise((resolve) => {
    let worker: string | undefined;
    const call = client[method](request, new grpc.Metadata(), {}, (err, value) =>
      resolve({ err, value, worker }),
    );
    call.on("metadata", (md: grpc.Metadata) => (worker = md.get("x-worker")[0]?.toString()));
  });
}

/** Starts a worker and a client, runs `body`, then closes both (even when `body` throws). */
async function withWorker(
  options: SimGrpcWorkerOptions,
  body: (worker: SimGrpcWorker, client: SimWorkerClient) => Promise<void>,
): Promise<void> {
  const worker = new SimGrpcWorker(options);
  const { address } = await worker.listen();
  const client = simWorkerClient(address);
  try {
    await body(worker, client);
  } finally {
    client.close();
    await worker.close();
  }
}

async function until(predicate: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    assert.ok(performance.now() < deadline, "condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("sim gRPC worker", { timeout: 30_000 }, () => {
  it("serves at most `slots` Infer calls at once; the rest queue", async () => {
    await withWorker({ name: "gpu-0", slots: 2, baseLatencyMs: 100 }, async (worker, client) => {
      await unary(client, "Echo", Buffer.alloc(0)); // connect first: time only the service
      const started = performance.now();
      const calls = Array.from({ length: 4 }, () => unary(client, "Infer", Buffer.from("x")));
      await until(() => worker.active + worker.queued === 4);
      assert.equal(worker.active, 2);
      assert.equal(worker.queued, 2);
      const replies = await Promise.all(calls);
      const elapsed = performance.now() - started;
      // Two rounds of 100 ms; libuv timers may fire up to 1 ms early against performance.now().
      assert.ok(elapsed >= 198, `took ${elapsed} ms`);
      assert.equal(worker.maxActive, 2);
      assert.equal(worker.active, 0);
      assert.equal(worker.calls, 5);
      for (const r of replies) {
        assert.equal(r.err, null);
        assert.equal(r.value?.toString(), "gpu-0");
        assert.equal(r.worker, "gpu-0");
      }
    });
  });

  it("applies speed as a multiplier on the service time", async () => {
    await withWorker({ name: "slow", baseLatencyMs: 40, speed: 3 }, async (_worker, client) => {
      await unary(client, "Echo", Buffer.alloc(0));
      const started = performance.now();
      assert.equal((await unary(client, "Infer", Buffer.alloc(0))).err, null);
      assert.ok(performance.now() - started >= 119);
    });
  });

  it("echoes bytes exactly, unary and streaming, in order", async () => {
    await withWorker({ name: "w" }, async (_worker, client) => {
      for (const payload of [Buffer.alloc(0), randomBytes(1), randomBytes(256 * 1024)]) {
        const r = await unary(client, "Echo", payload);
        assert.equal(r.err, null);
        assert.ok(r.value?.equals(payload));
      }
      const messages = Array.from({ length: 10 }, (_, i) => Buffer.from(`message ${i}`));

      const bidi = client.Bidi();
      const echoed: Buffer[] = [];
      bidi.on("data", (m: Buffer) => echoed.push(m));
      const bidiDone = new Promise((resolve, reject) => bidi.on("status", resolve).on("error", reject));
      for (const m of messages) bidi.write(m);
      bidi.end();
      await bidiDone;
      assert.deepEqual(echoed, messages);

      const concatenated = await new Promise<Buffer | undefined>((resolve, reject) => {
        const up = client.ClientStream((err, value) => (err ? reject(err) : resolve(value)));
        for (const m of messages) up.write(m);
        up.end();
      });
      assert.ok(concatenated?.equals(Buffer.concat(messages)));

      const metadata = new grpc.Metadata();
      metadata.set("x-repeat", "3");
      const down = client.ServerStream(Buffer.from("again"), metadata);
      const repeated: string[] = [];
      down.on("data", (m: Buffer) => repeated.push(m.toString()));
      await new Promise((resolve, reject) => down.on("status", resolve).on("error", reject));
      assert.deepEqual(repeated, ["again", "again", "again"]);
    });
  });

  it("honours backpressure on a long server stream and stops when the client cancels", async () => {
    await withWorker({ name: "w" }, async (_worker, client) => {
      const chunk = randomBytes(16 * 1024);
      const metadata = new grpc.Metadata();
      metadata.set("x-repeat", "500");
      let received = 0;
      const full = client.ServerStream(chunk, metadata);
      full.on("data", (m: Buffer) => (received += m.equals(chunk) ? 1 : 0));
      await new Promise((resolve, reject) => full.on("status", resolve).on("error", reject));
      assert.equal(received, 500);

      metadata.set("x-repeat", "100000");
      const cancelled = client.ServerStream(chunk, metadata);
      cancelled.on("error", () => {});
      await new Promise<void>((resolve) => cancelled.once("data", () => resolve()));
      cancelled.cancel();
    });
  });

  it("fails every Infer/Echo with the injected status until healed", async () => {
    await withWorker({ name: "w" }, async (worker, client) => {
      worker.failWith(grpc.status.RESOURCE_EXHAUSTED, "out of GPU memory");
      for (const method of ["Infer", "Echo"] as const) {
        const r = await unary(client, method, Buffer.from("x"));
        assert.equal(r.err?.code, grpc.status.RESOURCE_EXHAUSTED);
        assert.equal(r.err?.details, "out of GPU memory");
      }
      worker.failWith(undefined);
      assert.equal((await unary(client, "Infer", Buffer.from("x"))).err, null);
      assert.equal(worker.calls, 3);
    });
  });

  it("resets every n-th call's stream with the chosen RST_STREAM code", async () => {
    await withWorker({ name: "w" }, async (worker, client) => {
      worker.resetEvery(2);
      const codes: number[] = [];
      for (let i = 0; i < 4; i++) codes.push((await unary(client, "Echo", Buffer.from("x"))).err?.code ?? 0);
      assert.deepEqual(codes, [0, grpc.status.INTERNAL, 0, grpc.status.INTERNAL]);
      // REFUSED_STREAM means "not processed": grpc-js retries it once transparently, then gives up.
      worker.resetEvery(1, h2.NGHTTP2_REFUSED_STREAM);
      assert.equal((await unary(client, "Infer", Buffer.from("x"))).err?.code, grpc.status.UNAVAILABLE);
      worker.resetEvery(undefined);
      assert.equal((await unary(client, "Infer", Buffer.from("x"))).err, null);
      assert.equal(worker.resets, 4);
      assert.equal(worker.calls, 7);
      assert.equal(worker.cancelled, 0);
    });
  });

  it("counts a call the client cancelled, in service or queued, and frees its slot", async () => {
    await withWorker({ name: "w", slots: 1, baseLatencyMs: 5000 }, async (worker, client) => {
      const calls = [0, 1].map(() => {
        let settle: (err: grpc.ServiceError | null) => void = () => {};
        const reply = new Promise<grpc.ServiceError | null>((resolve) => (settle = resolve));
        return { call: client.Infer(Buffer.from("x"), (err) => settle(err)), reply };
      });
      await until(() => worker.active === 1 && worker.queued === 1);
      for (const { call } of calls) call.cancel();
      for (const { reply } of calls) assert.equal((await reply)?.code, grpc.status.CANCELLED);
      await until(() => worker.cancelled === 2);
      assert.equal(worker.active, 0);
      assert.equal(worker.queued, 0);
    });
  });

  it("with finishCancelled, serves a call whose client has gone anyway and counts it as wasted", async () => {
    await withWorker(
      { name: "w", slots: 1, baseLatencyMs: 300, finishCancelled: true },
      async (worker, client) => {
        const calls = [0, 1].map(() => {
          let settle: (err: grpc.ServiceError | null) => void = () => {};
          const reply = new Promise<grpc.ServiceError | null>((resolve) => (settle = resolve));
          return { call: client.Infer(Buffer.from("x"), (err) => settle(err)), reply };
        });
        await until(() => worker.active === 1 && worker.queued === 1);
        for (const { call } of calls) call.cancel();
        for (const { reply } of calls) assert.equal((await reply)?.code, grpc.status.CANCELLED);
        // The slot stays taken: the first call runs out its service, then the queued one gets it.
        assert.equal(worker.active, 1);
        await until(() => worker.wasted === 2);
        assert.equal(worker.active, 0);
        assert.equal(worker.queued, 0);
        assert.equal(worker.cancelled, 2);
      },
    );
  });

  it("answers health Check (counted) and streams Watch updates", async () => {
    await withWorker({ name: "w" }, async (worker) => {
      const Health = healthService();
      const health = new Health(
        `127.0.0.1:${worker.port}`,
        grpc.credentials.createInsecure(),
      ) as unknown as HealthClient;
      try {
        const statuses: string[] = [];
        const watch = health.Watch({ service: "" });
        watch.on("data", (m: HealthReply) => statuses.push(m.status));
        watch.on("error", () => {});
        await until(() => statuses.length === 1);
        worker.setServing("NOT_SERVING");
        worker.setServing("NOT_SERVING");
        worker.setServing("SERVING", "other");
        await until(() => statuses.length === 2);
        assert.deepEqual(statuses, ["SERVING", "NOT_SERVING"]);
        watch.cancel();
        const check = await new Promise<HealthReply | undefined>((resolve, reject) =>
          health.Check({ service: "" }, (err, value) => (err ? reject(err) : resolve(value))),
        );
        assert.equal(check?.status, "NOT_SERVING");
        assert.equal(worker.healthChecks, 1);
      } finally {
        health.close();
      }
    });
  });
});
