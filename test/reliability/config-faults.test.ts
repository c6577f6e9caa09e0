/**
 * Config faults: 500 configs, each a valid one with exactly one known mutation at a known path
 * (wrong type, unknown key, bad duration or size, bad address, out-of-range number, missing or empty
 * required key, duplicate name, unknown cluster, bad enum, a key where it does not apply). Every one
 * must be rejected with an error naming that path — in-process through parseConfig, and for a sample
 * through the real CLI (`check` and `run`: exit 1, the path on stderr, no stack trace, nothing bound).
 * A reload with a broken config (SIGHUP or POST /reload) must leave the old config serving.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import { ConfigError } from "../../src/config/config-error.js";
import { parseConfig } from "../../src/config/config-load.js";
import type { SimTcpWorker } from "../../src/sim/sim-tcp-worker.js";
import { makeTestCerts } from "../helpers/grpc-certs.js";
import { closeSocket, connectAndGreet, startWorkers, whoAnswers } from "../helpers/harness.js";
import { sampleMutations, type Json, type Mutation, type MutationKind } from "./helpers/config-mutations.js";
import { runFulcrum, startFulcrumProcess, until } from "./helpers/fulcrum-process.js";

/** Fixed, so that every run checks the same 500 configs; a failure message names the mutation. */
const SEED = 1_000_003;
const COUNT = 500;
const CHECK_SAMPLE = 20;
const TOKEN = "reload-test-token-5d1f";

/** A config that uses every part of the contract (it is only parsed, never run). */
const RICH: Json = {
  admin: { listen: "127.0.0.1:9901", token: "t0ken" },
  log: { level: "info" },
  threads: 1,
  drain_timeout: "30s",
  listeners: [
    {
      name: "tcp-in",
      protocol: "tcp",
      listen: "127.0.0.1:9000",
      cluster: "tcp-workers",
      max_connections: 1000,
      idle_timeout: "10m",
      handshake_timeout: "10s",
      proxy_protocol: "v1",
    },
    {
      name: "grpc-in",
      protocol: "grpc",
      listen: "[::1]:9001",
      cluster: "grpc-workers",
      max_connections: 500,
      idle_timeout: 0,
      engine: "http2",
      max_header_list_size: "16KiB",
      tls: { cert: "tls.crt", key: "tls.key", client_ca: "ca.crt" },
    },
    {
      name: "tcp-alt",
      protocol: "tcp",
      listen: "0.0.0.0:9002",
      cluster: "tcp-workers",
      access_log: { enabled: true, sample: 0.5 },
    },
  ],
  clusters: [
    {
      name: "tcp-workers",
      policy: "ip_hash",
      affinity: { key: "source_ip", balance_factor: 1.25 },
      connect_timeout: "2s",
      connect_attempts: 3,
      endpoints: [
        { address: "127.0.0.1:8101", weight: 1, name: "gpu-a" },
        { address: "127.0.0.1:8102", weight: 5, name: "gpu-b" },
        { address: "worker-3.local:8103" },
      ],
      health_check: {
        type: "tcp",
        interval: "2s",
        timeout: "1s",
        healthy_threshold: 2,
        unhealthy_threshold: 3,
      },
      outlier_detection: { consecutive_failures: 5, base_ejection_time: "30s", max_ejection_percent: 10 },
    },
    {
      name: "grpc-workers",
      policy: "least_connections",
      affinity: { key: "header:x-session-id", balance_factor: 0 },
      connect_timeout: "500ms",
      connect_attempts: 2,
      discovery: "dns",
      dns_refresh: "30s",
      dns_resolvers: ["127.0.0.1:5353"],
      tls: { ca: "ca.crt", server_name: "triton.local", insecure_skip_verify: false },
      models: [{ name: "resnet", version: "1" }],
      peek_max_bytes: "64KiB",
      explain: false,
      endpoints: [{ address: "triton-a.local:8001", weight: 2 }, { address: "[::1]:8002" }],
      health_check: { type: "grpc", service: "", interval: "1s", timeout: "500ms", watch: false },
    },
    { name: "spare", policy: "round_robin", endpoints: [{ address: "10.0.0.1:7000" }] },
  ],
};

/** A config Fulcrum can run on loopback, port 0, in front of `ports`. */
function runnable(ports: readonly number[]): Json {
  return {
    admin: { listen: "127.0.0.1:0", token: TOKEN },
    drain_timeout: "2s",
    listeners: [
      { name: "in", protocol: "tcp", listen: "127.0.0.1:0", cluster: "workers", idle_timeout: "60s" },
    ],
    clusters: [
      {
        name: "workers",
        policy: "round_robin",
        connect_timeout: "1s",
        health_check: {
          type: "tcp",
          interval: "1s",
          timeout: "500ms",
          healthy_threshold: 1,
          unhealthy_threshold: 2,
        },
        endpoints: ports.map((p) => ({ address: `127.0.0.1:${p}` })),
      },
    ],
  };
}

/** Why `m` was not rejected as it must be, or undefined when it was. */
function rejection(m: Mutation, baseDir: string): string | undefined {
  let err: unknown;
  try {
    parseConfig(m.yaml, { baseDir });
  } catch (e) {
    err = e;
  }
  if (err === undefined) return "accepted";
  if (!(err instanceof ConfigError))
    return `threw ${err instanceof Error ? (err.stack ?? err.message) : JSON.stringify(err)}, not a ConfigError`;
  const issues = err.issues.map((i) => `${i.path}: ${i.message}`);
  if (!err.issues.some((i) => i.path === m.path))
    return `no error names ${m.path}; got ${JSON.stringify(issues)}`;
  if (err.issues.some((i) => i.message.trim() === "" || i.message.includes("\n")))
    return `an empty or multi-line message: ${JSON.stringify(issues)}`;
  return undefined;
}

/** Every stderr line is one `path: message`; one of them names `path`; no stack trace. */
function assertPathErrors(stderr: string, path: string, what: string): void {
  const lines = stderr.split("\n").filter((l) => l !== "");
  assert.ok(lines.length > 0, `${what}: nothing on stderr`);
  assert.ok(!/^\s+at /m.test(stderr), `${what}: a stack trace on stderr:\n${stderr}`);
  for (const line of lines)
    assert.match(line, /^(\(root\)|\(file\)|[a-z_]+(\[\d+\])?)[^ ]*: \S/, `${what}: ${line}`);
  assert.ok(
    lines.some((l) => l.startsWith(`${path}: `)),
    `${what}: no line names ${path}:\n${stderr}`,
  );
}

/** Runs `fn` over `items`, `width` at a time. */
async function inBatches<T>(
  items: readonly T[],
  width: number,
  fn: (item: T, i: number) => Promise<void>,
): Promise<void> {
  for (let i = 0; i < items.length; i += width)
    await Promise.all(items.slice(i, i + width).map((item, k) => fn(item, i + k)));
}

describe("config faults", { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "fulcrum-config-faults-"));
  let mutations: Mutation[] = [];
  after(() => rmSync(dir, { recursive: true, force: true }));

  before(() => {
    parseConfig(stringify(RICH), { baseDir: dir }); // the base itself is valid: throws otherwise
    mutations = sampleMutations(RICH, COUNT, SEED);
  });

  it(`${COUNT} distinct mutations of a valid config cover every kind`, () => {
    assert.equal(new Set(mutations.map((m) => m.yaml)).size, COUNT);
    const kinds = new Map<MutationKind, number>();
    for (const m of mutations) kinds.set(m.kind, (kinds.get(m.kind) ?? 0) + 1);
    const all: MutationKind[] = [
      "wrong_type",
      "unknown_key",
      "bad_duration",
      "bad_size",
      "bad_address",
      "out_of_range",
      "missing_required",
      "empty_value",
      "duplicate_name",
      "unknown_cluster",
      "bad_enum",
      "misplaced_key",
    ];
    for (const kind of all) assert.ok((kinds.get(kind) ?? 0) >= 5, `${kind}: only ${kinds.get(kind) ?? 0}`);
    console.log(
      `reliability-figure ${JSON.stringify({ figure: "config_mutations", seed: SEED, ...Object.fromEntries(kinds) })}`,
    );
  });

  it(`parseConfig rejects all ${COUNT}, each with an error naming the mutated path`, () => {
    const wrong: string[] = [];
    for (const [i, m] of mutations.entries()) {
      const why = rejection(m, dir);
      if (why) wrong.push(`#${i} ${m.kind} (${m.change}): ${why}`);
    }
    assert.deepEqual(wrong, [], `seed ${SEED}`);
  });

  it(
    `fulcrum check on ${CHECK_SAMPLE} of them: exit 1, the path on stderr, no stack trace`,
    { timeout: 180_000 },
    async () => {
      const sample = mutations
        .filter((_, i) => i % Math.floor(COUNT / CHECK_SAMPLE) === 0)
        .slice(0, CHECK_SAMPLE);
      assert.equal(sample.length, CHECK_SAMPLE);
      await inBatches(sample, 4, async (m, i) => {
        const file = join(dir, `check-${i}.yaml`);
        writeFileSync(file, m.yaml);
        const r = await runFulcrum(["check", "--config", file]);
        const what = `check ${m.kind} (${m.change})`;
        assert.equal(r.code, 1, `${what}: exit ${r.code}, stderr ${r.stderr}`);
        assert.equal(r.stdout, "", `${what}: stdout`);
        assertPathErrors(r.stderr, m.path, what);
      });
    },
  );

  describe("against a running Fulcrum", () => {
    let workers: SimTcpWorker[] = [];
    let busy: Server;
    let busyPort = 0;
    before(async () => {
      workers = await startWorkers(["a", "b"]);
      busy = createServer();
      busyPort = await new Promise<number>((r) =>
        busy.listen(0, "127.0.0.1", () => r((busy.address() as { port: number }).port)),
      );
    });
    after(async () => {
      await Promise.all(workers.map((w) => w.close()));
      await new Promise((r) => busy.close(r));
    });

    /** The runnable config with a second listener on a port something else holds. */
    const withBusyListener = (): Mutation => {
      const config = runnable(workers.map((w) => w.port)) as { listeners: Json[] };
      config.listeners.push({
        name: "in2",
        protocol: "tcp",
        listen: `127.0.0.1:${busyPort}`,
        cluster: "workers",
      });
      return {
        kind: "bad_address",
        path: "listeners[1].listen",
        change: `listeners[1] on busy port ${busyPort}`,
        yaml: stringify(config),
      };
    };

    it("fulcrum run with broken configs exits 1 naming the path, with nothing bound", async () => {
      const base = runnable(workers.map((w) => w.port));
      const cases = [...sampleMutations(base, 5, SEED + 1), withBusyListener()];
      await inBatches(cases, 3, async (m, i) => {
        const file = join(dir, `run-${i}.yaml`);
        writeFileSync(file, m.yaml);
        const r = await runFulcrum(["run", "--config", file], 15_000);
        const what = `run ${m.kind} (${m.change})`;
        assert.equal(r.code, 1, `${what}: exit ${r.code} ${r.signal ?? ""}, stderr ${r.stderr}`);
        assert.ok(!r.stdout.includes('"msg":"listening"'), `${what}: something was bound:\n${r.stdout}`);
        assertPathErrors(r.stderr, m.path, what);
      });
    });

    // Regression: TLS files were read while the data plane built listeners, outside the ConfigError
    // handling, so `run` crashed with a stack trace and POST /reload answered 500.
    it("tls files: an unreadable tls.key is a path-named error for run and reload, not a crash", async () => {
      const certs = makeTestCerts();
      try {
        const base = runnable(workers.map((w) => w.port)) as { listeners: Json[] };
        const broken = structuredClone(base);
        broken.listeners.push({
          name: "g",
          protocol: "grpc",
          listen: "127.0.0.1:0",
          cluster: "workers",
          tls: { cert: certs.server.certPath, key: join(dir, "no-such-key.pem") },
        });
        const f = await startFulcrumProcess({ yaml: stringify(base), listening: 2 });
        try {
          f.writeConfig(stringify(broken));
          const reply = await f.admin("POST", "/reload", { headers: { authorization: `Bearer ${TOKEN}` } });
          assert.ok(["a", "b"].includes(await whoAnswers(f.target("in").port)), "the old config serves");
          assert.equal(reply.status, 400, `reload: ${reply.status} ${reply.text}`);
          assert.match(reply.text, /listeners\[1\]\.tls\.key: /);
        } finally {
          await f.stop();
        }
        const file = join(dir, "unreadable-key.yaml");
        writeFileSync(file, stringify(broken));
        const r = await runFulcrum(["run", "--config", file], 15_000);
        assert.equal(r.code, 1);
        assertPathErrors(r.stderr, "listeners[1].tls.key", "run with an unreadable tls.key");
      } finally {
        certs.remove();
      }
    });

    it("a reload (SIGHUP and POST /reload) with a broken config leaves the old config serving", async () => {
      const base = runnable(workers.map((w) => w.port));
      const f = await startFulcrumProcess({ yaml: stringify(base), listening: 2 });
      try {
        const port = f.target("in").port;
        const held = await connectAndGreet(port);
        const endpointsOf = async (): Promise<string> =>
          JSON.stringify(
            (await f.status()).clusters.map((c) => c.endpoints.map((e) => [e.address, e.weight])),
          );
        const before = await endpointsOf();
        const cases: Mutation[] = [
          ...sampleMutations(base, 6, SEED + 2),
          {
            kind: "out_of_range",
            path: "threads",
            change: "threads 1 → 2",
            yaml: stringify({ ...(base as object), threads: 2 }),
          },
          {
            kind: "bad_address",
            path: "admin.listen",
            change: "admin.listen changed",
            yaml: stringify({ ...(base as object), admin: { listen: "127.0.0.1:1", token: TOKEN } }),
          },
          withBusyListener(),
        ];
        for (const [i, m] of cases.entries()) {
          const what = `reload #${i} ${m.kind} (${m.change})`;
          f.writeConfig(m.yaml);
          if (i % 2 === 0) {
            const reply = await f.admin("POST", "/reload", { headers: { authorization: `Bearer ${TOKEN}` } });
            assert.equal(reply.status, 400, `${what}: ${reply.text}`);
            const errors = (JSON.parse(reply.text) as { errors: string[] }).errors;
            assert.ok(
              errors.some((e) => e.startsWith(`${m.path}: `)),
              `${what}: ${JSON.stringify(errors)}`,
            );
          } else {
            const from = f.lines.length;
            f.channel.signal("SIGHUP");
            // SIGHUP has no reply: the operator reads the log line, so it must name the path.
            await until(
              () =>
                f.lines
                  .slice(from)
                  .some((l) => l.level === "error" && JSON.stringify(l).includes(`${m.path}: `)),
              10_000,
              `${what}: an error log line naming ${m.path}`,
            );
          }
          await until(
            async () => (await f.metric("fulcrum_config_reloads_total", { result: "failure" })) === i + 1,
            5000,
            `${what}: fulcrum_config_reloads_total{result="failure"} = ${i + 1}`,
          );
          assert.equal(await f.metric("fulcrum_config_reloads_total", { result: "success" }), 0, what);
          assert.ok(f.channel.alive, `${what}: fulcrum exited`);
          assert.equal(await endpointsOf(), before, `${what}: the endpoints changed`);
          assert.ok(["a", "b"].includes(await whoAnswers(port)), `${what}: a new connection is served`);
          held.socket.resume();
          held.socket.write("still here\n");
          const echoed = await new Promise<string>((r) =>
            held.socket.once("data", (d: Buffer) => r(d.toString())),
          );
          held.socket.pause();
          assert.equal(echoed, "still here\n", `${what}: the open connection still works`);
        }
        // A valid reload still works afterwards: the failures were refusals, not a broken reloader.
        f.writeConfig(stringify(runnable([workers[0]?.port ?? 0])));
        const ok = await f.admin("POST", "/reload", { headers: { authorization: `Bearer ${TOKEN}` } });
        assert.equal(ok.status, 200, ok.text);
        assert.equal(await f.metric("fulcrum_config_reloads_total", { result: "success" }), 1);
        for (let i = 0; i < 4; i++) assert.equal(await whoAnswers(port), "a");
        await closeSocket(held.socket);
      } finally {
        assert.equal(await f.stop(), 0, "a clean exit");
      }
    });
  });
});
