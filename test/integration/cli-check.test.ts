/**
 * `fulcrum check` and `run` on what the config resolves: the gRPC engine a listener gets without
 * `engine` (frames) and the one each "listening" line names; the TLS files a config names, read
 * relative to the config file, shown resolved (the key redacted), and refused by path when missing.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, startCli, type CliProcess } from "../helpers/cli-process.js";
import { makeTestCerts, type TestCerts } from "../helpers/grpc-certs.js";

interface Resolved {
  listeners: { name: string; engine: string; tls?: { cert: string; key: string; client_ca?: string } }[];
  clusters: { tls?: { ca?: string } }[];
}

describe("cli: check and run resolve engines and files", { timeout: 60_000 }, () => {
  let dir: string;
  let certs: TestCerts;
  const running: CliProcess[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "fulcrum-cli-check-"));
    certs = makeTestCerts();
    mkdirSync(join(dir, "tls"));
    copyFileSync(certs.server.certPath, join(dir, "tls", "server.crt"));
    copyFileSync(certs.server.keyPath, join(dir, "tls", "server.key"));
    copyFileSync(certs.ca.certPath, join(dir, "ca.crt"));
  });
  after(async () => {
    for (const p of running) {
      if (p.child.exitCode === null) p.child.kill("SIGKILL");
      await p.exited();
    }
    certs.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  function write(name: string, yaml: string): string {
    const file = join(dir, name);
    writeFileSync(file, yaml);
    return file;
  }

  it("check: a grpc listener without engine runs on frames; engine: http2 stays http2", async () => {
    const file = write(
      "engines.yaml",
      `listeners:
  - { name: default, protocol: grpc, listen: "127.0.0.1:0", cluster: c }
  - { name: fallback, protocol: grpc, engine: http2, listen: "127.0.0.1:0", cluster: c }
clusters:
  - { name: c, endpoints: [{ address: "127.0.0.1:9" }] }
`,
    );
    const r = await runCli(["check", "--config", file]);
    assert.equal(r.code, 0, r.stderr);
    const resolved = JSON.parse(r.stdout) as Resolved;
    assert.deepEqual(
      resolved.listeners.map((l) => [l.name, l.engine]),
      [
        ["default", "frames"],
        ["fallback", "http2"],
      ],
    );
    assert.match(r.stdout, /"engine": "frames"/);
  });

  it("run: each grpc listener's listening line names its engine", async () => {
    const file = write(
      "run-engines.yaml",
      `listeners:
  - { name: default, protocol: grpc, listen: "127.0.0.1:0", cluster: c }
  - { name: fallback, protocol: grpc, engine: http2, listen: "127.0.0.1:0", cluster: c }
  - { name: plain, protocol: tcp, listen: "127.0.0.1:0", cluster: t }
clusters:
  - { name: c, health_check: { type: none }, endpoints: [{ address: "127.0.0.1:9" }] }
  - { name: t, health_check: { type: none }, endpoints: [{ address: "127.0.0.1:9" }] }
`,
    );
    const p = await startCli(["--config", file], 3);
    running.push(p);
    const listening = (name: string): Record<string, unknown> | undefined =>
      p.lines.find((l) => l.msg === "listening" && l.listener === name);
    assert.equal(listening("default")?.engine, "frames");
    assert.equal(listening("fallback")?.engine, "http2");
    assert.equal(listening("plain")?.protocol, "tcp");
    assert.equal(listening("plain")?.engine, undefined, "tcp listeners have no engine");
    p.child.kill("SIGTERM");
    assert.equal(await p.exited(), 0);
  });

  it("run: a SIGTERM sent the moment the first listening line appears drains and exits 0", async () => {
    const file = write(
      "early-signal.yaml",
      `listeners:
  - { name: plain, protocol: tcp, listen: "127.0.0.1:0", cluster: t }
  - { name: g, protocol: grpc, listen: "127.0.0.1:0", cluster: t }
clusters:
  - { name: t, health_check: { type: none }, endpoints: [{ address: "127.0.0.1:9" }] }
`,
    );
    for (let i = 0; i < 5; i++) {
      const p = await startCli(["--config", file], 1);
      running.push(p);
      p.child.kill("SIGTERM");
      assert.equal(await p.exited(), 0, `run ${i}: exit code`);
    }
  });

  it("check: TLS files resolved against the config's directory, shown resolved, the key redacted", async () => {
    const file = write(
      "tls.yaml",
      `listeners:
  - name: g
    protocol: grpc
    listen: "127.0.0.1:0"
    cluster: c
    tls: { cert: tls/server.crt, key: tls/server.key, client_ca: ./ca.crt }
clusters:
  - { name: c, tls: { ca: ca.crt }, endpoints: [{ address: "127.0.0.1:9" }] }
`,
    );
    const r = await runCli(["check", "--config", file]);
    assert.equal(r.code, 0, r.stderr);
    const resolved = JSON.parse(r.stdout) as Resolved;
    assert.deepEqual(resolved.listeners[0]?.tls, {
      cert: join(dir, "tls", "server.crt"),
      key: "<redacted>",
      client_ca: join(dir, "ca.crt"),
    });
    assert.equal(resolved.clusters[0]?.tls?.ca, join(dir, "ca.crt"));
  });

  it("check and run: a missing TLS file is named by its YAML path and resolved path, exit 1", async () => {
    const file = write(
      "missing.yaml",
      `listeners:
  - { name: g, protocol: grpc, listen: "127.0.0.1:0", cluster: c, tls: { cert: tls.crt, key: tls/server.key } }
clusters:
  - { name: c, tls: { ca: nowhere/ca.crt }, endpoints: [{ address: "127.0.0.1:9" }] }
`,
    );
    const expected =
      `listeners[0].tls.cert: cannot read "${join(dir, "tls.crt")}": no such file\n` +
      `clusters[0].tls.ca: cannot read "${join(dir, "nowhere", "ca.crt")}": no such file\n`;
    const check = await runCli(["check", "--config", file]);
    assert.equal(check.code, 1);
    assert.equal(check.stdout, "");
    assert.equal(check.stderr, expected);
    const run = await runCli(["run", "--config", file]);
    assert.equal(run.code, 1);
    assert.ok(run.stderr.endsWith(expected), run.stderr);
    assert.ok(!run.stdout.includes('"listening"'), "nothing was bound");
  });
});
