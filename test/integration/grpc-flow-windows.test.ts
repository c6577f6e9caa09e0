/**
 * Flow-control windows come back whatever ends a stream: twelve server-streaming calls whose client
 * stops reading, each cancelled while Fulcrum holds megabytes of its response queued for that client,
 * leave the worker's connection able to carry the next call (a window that lost those bytes would
 * stall it: 12 × about 3.7 MiB is more than the 32 MiB connection window). Runs on both engines
 * (grpcConfig).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { SimGrpcWorker } from "../../src/sim/sim-grpc-worker.js";
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
});
