/**
 * Deadlines and cancellation through gRPC mode. Fulcrum forwards `grpc-timeout` and enforces it
 * itself: at expiry the client gets DEADLINE_EXCEEDED and the upstream stream is cancelled, even
 * when the client never cancels and the worker ignores the deadline. A client's cancel reaches the
 * worker.
 */
import assert from "node:assert/strict";
import { constants as h2 } from "node:http2";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { Teardown, echoClient, grpcConfig, startUnary } from "../helpers/grpc-client.js";
import {
  RawHttp2Worker,
  closeSession,
  rawConnect,
  rawGrpcRequest,
  respondGrpc,
} from "../helpers/grpc-raw.js";
import { ECHO, startGrpcWorkers, type GrpcTestWorker } from "../helpers/grpc-test-worker.js";
import { startFulcrum, waitFor } from "../helpers/harness.js";

/** The acceptance's window for DEADLINE_EXCEEDED on a 300 ms deadline: 300 ± 200 ms. */
const DEADLINE_MS = 300;
const TOLERANCE_MS = 200;

function closeWorkers(workers: readonly GrpcTestWorker[]): Promise<unknown> {
  return Promise.all(workers.map((w) => w.close()));
}

describe("grpc deadlines and cancellation", { timeout: 60_000 }, () => {
  it("grpc-timeout 300m to a worker that ignores it: status 4 in 300 ± 200 ms, upstream stream cancelled", async () => {
    const own = new Teardown();
    try {
      const seen: { timeout?: unknown; closedAt?: number; rstCode?: number; answered: boolean } = {
        answered: false,
      };
      // A 2 s handler that ignores grpc-timeout: only Fulcrum can end the call in time.
      const worker = own.add(
        new RawHttp2Worker((stream, headers) => {
          seen.timeout = headers["grpc-timeout"];
          stream.resume();
          const timer = setTimeout(() => {
            seen.answered = true;
            respondGrpc(stream, Buffer.from("too late"));
          }, 2000);
          stream.once("close", () => {
            clearTimeout(timer);
            seen.closedAt = performance.now();
            seen.rstCode = stream.rstCode;
          });
        }),
        (w) => w.close(),
      );
      await worker.listen();
      const f = own.add(await startFulcrum(grpcConfig({ endpoints: [worker.address] })), (x) =>
        x.fulcrum.stop(0),
      );
      const session = own.add(await rawConnect(f.target("g")), closeSession);

      const sentAt = performance.now();
      const r = await rawGrpcRequest(session, ECHO.unary, [Buffer.alloc(0)], {
        headers: { "grpc-timeout": `${DEADLINE_MS}m` },
        timeoutMs: 5000,
      });
      assert.equal(r.timedOut, false, "Fulcrum ended the stream");
      assert.equal(r.grpcStatus, String(grpc.status.DEADLINE_EXCEEDED));
      assert.ok(r.statusMs !== undefined, "grpc-status arrived");
      assert.ok(
        Math.abs(r.statusMs - DEADLINE_MS) <= TOLERANCE_MS,
        `DEADLINE_EXCEEDED after ${Math.round(r.statusMs)} ms, expected ${DEADLINE_MS} ± ${TOLERANCE_MS}`,
      );
      assert.ok(seen.timeout !== undefined, "grpc-timeout was forwarded to the worker");

      await waitFor(() => seen.closedAt !== undefined, 1000, "the worker's stream to close");
      assert.equal(seen.answered, false, "the worker never got to answer");
      assert.equal(seen.rstCode, h2.NGHTTP2_CANCEL, "the worker's stream was reset with CANCEL");
      const cancelledAfter = (seen.closedAt as number) - sentAt;
      assert.ok(
        cancelledAfter <= DEADLINE_MS + TOLERANCE_MS + 100,
        `upstream cancelled ${Math.round(cancelledAfter)} ms after the request`,
      );
    } finally {
      await own.run();
    }
  });

  it("grpc-timeout 300m to a 2 s grpc-js handler: status 4 in 300 ± 200 ms and the worker sees its call cancelled", async () => {
    const own = new Teardown();
    try {
      const [worker] = own.add(await startGrpcWorkers(["a"], { delayMs: 2000 }), closeWorkers);
      assert.ok(worker);
      const f = own.add(await startFulcrum(grpcConfig({ endpoints: [worker.address] })), (x) =>
        x.fulcrum.stop(0),
      );
      const session = own.add(await rawConnect(f.target("g")), closeSession);
      const r = await rawGrpcRequest(session, ECHO.unary, [Buffer.alloc(0)], {
        headers: { "grpc-timeout": `${DEADLINE_MS}m` },
        timeoutMs: 5000,
      });
      assert.equal(r.grpcStatus, String(grpc.status.DEADLINE_EXCEEDED));
      assert.ok(
        r.statusMs !== undefined && Math.abs(r.statusMs - DEADLINE_MS) <= TOLERANCE_MS,
        `DEADLINE_EXCEEDED after ${r.statusMs} ms`,
      );
      await waitFor(() => worker.cancelled === 1, 1000, "the worker to see its call cancelled");
      assert.equal(worker.active, 0);
    } finally {
      await own.run();
    }
  });

  it("a grpc-js client's cancel reaches the worker", async () => {
    const own = new Teardown();
    try {
      const [worker] = own.add(await startGrpcWorkers(["a"]), closeWorkers);
      assert.ok(worker);
      const f = own.add(await startFulcrum(grpcConfig({ endpoints: [worker.address] })), (x) =>
        x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const set = f.fulcrum.cluster("w").endpoints;
      const e = set.get(worker.address);
      assert.ok(e);
      worker.hold();
      const { call, outcome } = startUnary(client, ECHO.unary);
      await waitFor(() => worker.heldCount === 1, 5000, "the call to reach the worker");
      assert.equal(set.activeOf(e), 1);
      call.cancel();
      const o = await outcome;
      assert.ok(!o.ok && o.code === grpc.status.CANCELLED, JSON.stringify(o));
      await waitFor(() => worker.cancelled === 1, 1000, "the cancel to reach the worker");
      await waitFor(() => set.activeOf(e) === 0, 1000, "Fulcrum to release the stream");
    } finally {
      await own.run();
    }
  });

  it("a grpc-js client's deadline: DEADLINE_EXCEEDED and the worker sees the call cancelled", async () => {
    const own = new Teardown();
    try {
      const [worker] = own.add(await startGrpcWorkers(["a"]), closeWorkers);
      assert.ok(worker);
      const f = own.add(await startFulcrum(grpcConfig({ endpoints: [worker.address] })), (x) =>
        x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      worker.hold();
      const o = await startUnary(client, ECHO.unary, undefined, { deadlineMs: DEADLINE_MS }).outcome;
      assert.ok(!o.ok && o.code === grpc.status.DEADLINE_EXCEEDED, JSON.stringify(o));
      assert.ok(Math.abs(o.ms - DEADLINE_MS) <= TOLERANCE_MS, `after ${Math.round(o.ms)} ms`);
      await waitFor(() => worker.cancelled === 1, 1000, "the worker to see its call cancelled");
    } finally {
      await own.run();
    }
  });
});
