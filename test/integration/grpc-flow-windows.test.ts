/**
 * Flow-control windows come back whatever ends a stream: twelve server-streaming calls whose client
 * stops reading, each cancelled while Fulcrum holds megabytes of its response queued for that client,
 * leave the worker's connection able to carry the next call (a window that lost those bytes would
 * stall it: 12 × about 3.7 MiB is more than the 32 MiB connection window); and 150 calls of 256 KiB
 * shed from the queue with their requests held in Fulcrum leave the client's connection able to send
 * the next one (150 × 256 KiB is more than that window too). Runs on both engines (grpcConfig).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { SimGrpcWorker, simWorkerClient } from "../../src/sim/sim-grpc-worker.js";
import { Teardown, UNLIMITED_MESSAGES, echoClient, grpcConfig, sleep } from "../helpers/grpc-client.js";
import { startFulcrum } from "../helpers/harness.js";

const identity = (b: Buffer): Buffer => b;
const MIB = 1024 * 1024;

/** A server stream of `repeat` copies of `message`; resolves with its status and the bytes read. */
function serverStream(
  client: grpc.Client,
  message: Buffer,
  repeat: number,
  deadlineMs: number,
): { call: grpc.ClientReadableStream<Buffer>; done: Promise<{ code: grpc.status; bytes: number }> } {
  const md = new grpc.Metadata();
  md.set("x-repeat", String(repeat));
  const call = client.makeServerStreamRequest(
    "/fulcrum.sim.Worker/ServerStream",
    identity,
    identity,
    message,
    md,
    { deadline: Date.now() + deadlineMs },
  );
  let bytes = 0;
  const done = new Promise<{ code: grpc.status; bytes: number }>((resolve) => {
    call.on("data", (b: Buffer) => (bytes += b.length));
    call.on("error", () => undefined);
    call.on("status", (s: grpc.StatusObject) => resolve({ code: s.code, bytes }));
  });
  return { call, done };
}

describe("grpc: flow-control windows", { timeout: 90_000 }, () => {
  it("12 cancelled streams with megabytes queued for a stalled client leave the worker's connection usable", async () => {
    const own = new Teardown();
    try {
      const worker = own.add(new SimGrpcWorker({ name: "a" }), (w) => w.close());
      await worker.listen("127.0.0.1", 0);
      const f = own.add(await startFulcrum(grpcConfig({ endpoints: [`127.0.0.1:${worker.port}`] })), (x) =>
        x.fulcrum.stop(0),
      );
      const message = Buffer.alloc(MIB, 0x61);
      for (let i = 0; i < 12; i++) {
        const client = echoClient(f.target("g"), { channelOptions: UNLIMITED_MESSAGES });
        const { call, done } = serverStream(client, message, 64, 20_000);
        call.pause();
        // Long enough for the worker to fill Fulcrum up to its stream window.
        await sleep(300);
        call.cancel();
        assert.equal((await done).code, grpc.status.CANCELLED);
        client.close();
      }
      const client = own.add(echoClient(f.target("g"), { channelOptions: UNLIMITED_MESSAGES }), (c) =>
        c.close(),
      );
      const last = await serverStream(client, message, 40, 15_000).done;
      assert.equal(last.code, grpc.status.OK);
      assert.equal(last.bytes, 40 * MIB);
    } finally {
      await own.run();
    }
  });

  it("150 calls of 256 KiB shed from the queue with their requests held leave the client's connection usable", async () => {
    const own = new Teardown();
    try {
      const worker = own.add(new SimGrpcWorker({ name: "a" }), (w) => w.close());
      await worker.listen("127.0.0.1", 0);
      const config = grpcConfig({
        endpoints: [`127.0.0.1:${worker.port}`],
        extra: ["max_active_per_endpoint: 1", "queue: { max_size: 50, timeout: 100ms }"],
      });
      const f = own.add(await startFulcrum(config), (x) => x.fulcrum.stop(0));
      const t = f.target("g");
      const client = own.add(simWorkerClient(`${t.host}:${t.port}`, UNLIMITED_MESSAGES), (c) => c.close());
      // A call that holds the endpoint's one slot while the others wait in the queue.
      const holder = client.Bidi(new grpc.Metadata(), { deadline: Date.now() + 30_000 });
      holder.on("error", () => undefined);
      holder.write(Buffer.from("hold"));
      await new Promise((resolve) => holder.once("data", resolve));
      const body = Buffer.alloc(256 * 1024, 0x62);
      const echo = (payload: Buffer): Promise<grpc.status> =>
        new Promise((resolve) =>
          client.Echo(payload, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err) =>
            resolve(err ? err.code : grpc.status.OK),
          ),
        );
      for (let batch = 0; batch < 3; batch++) {
        const codes = await Promise.all(Array.from({ length: 50 }, () => echo(body)));
        assert.deepEqual(new Set(codes), new Set([grpc.status.RESOURCE_EXHAUSTED]));
      }
      holder.end();
      await new Promise((resolve) => holder.once("end", resolve));
      assert.equal(await echo(Buffer.alloc(MIB, 0x63)), grpc.status.OK);
    } finally {
      await own.run();
    }
  });
});
