/**
 * TLS in gRPC mode, with certificates the test makes: a TLS listener served over ALPN h2, mTLS with
 * `client_ca`, and TLS upstreams verified with the cluster's `ca` / `server_name` or not at all with
 * `insecure_skip_verify`.
 */
import assert from "node:assert/strict";
import { connect as tlsConnect } from "node:tls";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { makeTestCerts, type TestCerts } from "../helpers/grpc-certs.js";
import { Teardown, echoClient, grpcConfig, nameOf, who } from "../helpers/grpc-client.js";
import { startGrpcWorkers, type GrpcTestWorker } from "../helpers/grpc-test-worker.js";
import { startFulcrum } from "../helpers/harness.js";

function closeWorkers(workers: readonly GrpcTestWorker[]): Promise<unknown> {
  return Promise.all(workers.map((w) => w.close()));
}

/** The ALPN protocol and verification result a TLS client offering h2 gets from `port`. */
function alpnOf(port: number, ca: Buffer): Promise<{ alpn: string | false; authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      { host: "127.0.0.1", port, ca, servername: "localhost", ALPNProtocols: ["h2"] },
      () => {
        const result = { alpn: socket.alpnProtocol ?? false, authorized: socket.authorized };
        socket.destroy();
        resolve(result);
      },
    );
    socket.once("error", reject);
  });
}

describe("grpc TLS", { timeout: 60_000 }, () => {
  let certs: TestCerts;
  before(() => {
    certs = makeTestCerts();
  });
  after(() => {
    certs.remove();
  });

  it("a TLS listener serves gRPC over ALPN h2", async () => {
    const own = new Teardown();
    try {
      const [worker] = own.add(await startGrpcWorkers(["a"]), closeWorkers);
      assert.ok(worker);
      const f = own.add(
        await startFulcrum(
          grpcConfig(
            { endpoints: [worker.address] },
            { tls: `{ cert: "${certs.server.certPath}", key: "${certs.server.keyPath}" }` },
          ),
        ),
        (x) => x.fulcrum.stop(0),
      );
      assert.deepEqual(await alpnOf(f.target("g").port, certs.ca.cert), { alpn: "h2", authorized: true });
      const client = own.add(
        echoClient(f.target("g"), { credentials: grpc.credentials.createSsl(certs.ca.cert) }),
        (c) => c.close(),
      );
      assert.equal(nameOf(await who(client)), "a");
    } finally {
      await own.run();
    }
  });

  it("with client_ca: a client without a certificate, or with one from another CA, is refused", async () => {
    const own = new Teardown();
    try {
      const [worker] = own.add(await startGrpcWorkers(["a"]), closeWorkers);
      assert.ok(worker);
      const f = own.add(
        await startFulcrum(
          grpcConfig(
            { endpoints: [worker.address] },
            {
              tls: `{ cert: "${certs.server.certPath}", key: "${certs.server.keyPath}", client_ca: "${certs.ca.certPath}" }`,
            },
          ),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const target = f.target("g");
      const anonymous = own.add(
        echoClient(target, { credentials: grpc.credentials.createSsl(certs.ca.cert) }),
        (c) => c.close(),
      );
      const stranger = own.add(
        echoClient(target, {
          credentials: grpc.credentials.createSsl(
            certs.ca.cert,
            certs.otherClient.key,
            certs.otherClient.cert,
          ),
        }),
        (c) => c.close(),
      );
      const member = own.add(
        echoClient(target, {
          credentials: grpc.credentials.createSsl(certs.ca.cert, certs.client.key, certs.client.cert),
        }),
        (c) => c.close(),
      );
      for (const [who_, client] of [
        ["no certificate", anonymous],
        ["another CA's certificate", stranger],
      ] as const) {
        const o = await who(client, { deadlineMs: 5000 });
        assert.ok(!o.ok && o.code === grpc.status.UNAVAILABLE, `${who_}: ${JSON.stringify(o)}`);
      }
      assert.equal(worker.calls, 0, "no refused client reached the worker");
      assert.equal(nameOf(await who(member)), "a");
    } finally {
      await own.run();
    }
  });

  const upstreamCases: readonly { title: string; tls: (c: TestCerts) => string; ok: boolean }[] = [
    { title: "ca: the worker's CA", tls: (c) => `{ ca: "${c.ca.certPath}" }`, ok: true },
    {
      title: "ca and server_name from the worker's certificate",
      tls: (c) => `{ ca: "${c.ca.certPath}", server_name: ${c.serverName} }`,
      ok: true,
    },
    { title: "ca: an unrelated CA", tls: (c) => `{ ca: "${c.otherCa.certPath}" }`, ok: false },
    {
      title: "server_name not in the worker's certificate",
      tls: (c) => `{ ca: "${c.ca.certPath}", server_name: wrong.fulcrum.test }`,
      ok: false,
    },
    { title: "insecure_skip_verify without a CA", tls: () => "{ insecure_skip_verify: true }", ok: true },
    {
      title: "insecure_skip_verify with an unrelated CA",
      tls: (c) => `{ ca: "${c.otherCa.certPath}", insecure_skip_verify: true }`,
      ok: true,
    },
  ];
  for (const { title, tls, ok } of upstreamCases) {
    it(`TLS upstream, ${title}: ${ok ? "works" : "UNAVAILABLE"}`, async () => {
      const own = new Teardown();
      try {
        const credentials = grpc.ServerCredentials.createSsl(
          null,
          [{ cert_chain: certs.server.cert, private_key: certs.server.key }],
          false,
        );
        const [worker] = own.add(await startGrpcWorkers(["a"], { credentials }), closeWorkers);
        assert.ok(worker);
        const f = own.add(
          await startFulcrum(
            grpcConfig({
              endpoints: [worker.address],
              tls: tls(certs),
              extra: ["connect_timeout: 1s", "connect_attempts: 1"],
            }),
          ),
          (x) => x.fulcrum.stop(0),
        );
        const client = own.add(echoClient(f.target("g")), (c) => c.close());
        const o = await who(client, { deadlineMs: 5000 });
        if (ok) {
          assert.equal(nameOf(o), "a");
        } else {
          assert.ok(!o.ok && o.code === grpc.status.UNAVAILABLE, JSON.stringify(o));
          assert.equal(worker.calls, 0);
        }
      } finally {
        await own.run();
      }
    });
  }
});
