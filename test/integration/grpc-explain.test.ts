/**
 * `explain: true` on the engine under test: Fulcrum's own error answers carry the `fulcrum-route`
 * trailer too (no endpoint: `endpoint=none` and why; deadline exceeded and an upstream reset: the
 * endpoint the stream had), and `reason=cost` appears only when least_loaded's costs decided the pick.
 */
import assert from "node:assert/strict";
import { constants as h2 } from "node:http2";
import { describe, it } from "node:test";
import { Teardown, echoClient, grpcConfig } from "../helpers/grpc-client.js";
import {
  RawHttp2Worker,
  closeSession,
  grpcFrame,
  rawConnect,
  rawGrpcRequest,
  readBody,
} from "../helpers/grpc-raw.js";
import { ECHO, startGrpcWorkers, type GrpcTestWorker } from "../helpers/grpc-test-worker.js";
import { startFulcrum } from "../helpers/harness.js";

const TIMEOUT = { timeout: 60_000 };

function closeWorkers(workers: readonly { close(): Promise<void> }[]): Promise<unknown> {
  return Promise.all(workers.map((w) => w.close()));
}

describe("explain on Fulcrum's own answers", TIMEOUT, () => {
  it("no endpoint: a trailers-only UNAVAILABLE with endpoint=none and the reason", async () => {
    const own = new Teardown();
    try {
      const [a] = own.add(await startGrpcWorkers(["a"]), closeWorkers) as [GrpcTestWorker];
      const f = own.add(
        await startFulcrum(grpcConfig({ endpoints: [a.address], extra: ["explain: true"] })),
        (x) => x.fulcrum.stop(0),
      );
      f.fulcrum.cluster("w").endpoints.setHealth(a.address, "unhealthy");
      const session = own.add(await rawConnect(f.target("g")), closeSession);
      const r = await rawGrpcRequest(session, ECHO.unary);
      assert.equal(r.trailersOnly, true);
      assert.equal(r.grpcStatus, "14");
      assert.equal(r.headers["fulcrum-route"], "endpoint=none;policy=round_robin;reason=no_healthy_endpoint");
    } finally {
      await own.run();
    }
  });

  it("deadline exceeded: the trailer names the endpoint the stream was on", async () => {
    const own = new Teardown();
    try {
      const [a] = own.add(await startGrpcWorkers(["a"], { delayMs: 3000 }), closeWorkers) as [GrpcTestWorker];
      const f = own.add(
        await startFulcrum(grpcConfig({ endpoints: [a.address], extra: ["explain: true"] })),
        (x) => x.fulcrum.stop(0),
      );
      const session = own.add(await rawConnect(f.target("g")), closeSession);
      const r = await rawGrpcRequest(session, ECHO.unary, undefined, { headers: { "grpc-timeout": "200m" } });
      assert.equal(r.grpcStatus, "4");
      const fields = r.trailersOnly ? r.headers : r.trailers;
      assert.equal(fields?.["fulcrum-route"], `endpoint=${a.address};policy=round_robin;reason=policy`);
    } finally {
      await own.run();
    }
  });

  it("an upstream reset after response bytes: the INTERNAL answer carries the trailer", async () => {
    const own = new Teardown();
    try {
      const resetter = own.add(
        new RawHttp2Worker((stream) => {
          void readBody(stream).then(() => {
            if (stream.closed) return;
            stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
            stream.once("wantTrailers", () => setTimeout(() => stream.close(h2.NGHTTP2_INTERNAL_ERROR), 20));
            stream.end(grpcFrame(Buffer.from("partial")));
          });
        }),
        (w) => w.close(),
      );
      await resetter.listen();
      const f = own.add(
        await startFulcrum(grpcConfig({ endpoints: [resetter.address], extra: ["explain: true"] })),
        (x) => x.fulcrum.stop(0),
      );
      const session = own.add(await rawConnect(f.target("g")), closeSession);
      const r = await rawGrpcRequest(session, ECHO.unary);
      assert.equal(r.grpcStatus, "13");
      assert.equal(
        r.trailers?.["fulcrum-route"],
        `endpoint=${resetter.address};policy=round_robin;reason=policy`,
      );
    } finally {
      await own.run();
    }
  });

  it("least_loaded says cost only when the costs decided: a tie or one endpoint is the policy", async () => {
    const own = new Teardown();
    try {
      const workers = own.add(await startGrpcWorkers(["a", "b"], { delayMs: 5 }), closeWorkers);
      const addresses = workers.map((w) => w.address);
      const f = own.add(
        await startFulcrum(
          grpcConfig({ policy: "least_loaded", endpoints: addresses, extra: ["explain: true"] }),
          { seed: 1 },
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const reasons: string[] = [];
      for (let i = 0; i < 5; i++) reasons.push(await routeOf(client));
      // No latency seen yet: both estimates are equal, the first draw wins (the policy). Once one
      // endpoint has a latency sample the costs differ and decide.
      assert.match(reasons[0] ?? "", /;reason=policy$/, reasons.join(" "));
      for (const r of reasons.slice(2)) assert.match(r, /;reason=cost$/, reasons.join(" "));

      const single = own.add(
        await startFulcrum(
          grpcConfig({
            policy: "least_loaded",
            endpoints: [addresses[0] as string],
            extra: ["explain: true"],
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const one = own.add(echoClient(single.target("g")), (c) => c.close());
      await routeOf(one);
      assert.match(await routeOf(one), /;reason=policy$/);
    } finally {
      await own.run();
    }
  });
});

/** The `fulcrum-route` trailer of one ECHO.unary call. */
function routeOf(client: ReturnType<typeof echoClient>): Promise<string> {
  return new Promise((resolve, reject) => {
    const call = client.makeUnaryRequest(
      ECHO.unary,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      (err) => {
        if (err) reject(err);
      },
    );
    call.on("status", (s) => resolve(String(s.metadata.get("fulcrum-route")[0] ?? "")));
  });
}
