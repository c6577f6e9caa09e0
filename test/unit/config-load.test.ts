/**
 * Config loading: defaults, resolution (health_check, file paths), freezing, redaction, units.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConfigError } from "../../src/config/config-error.js";
import { loadConfigFile, parseConfig, redactConfig } from "../../src/config/config-load.js";
import { durationMs, sizeBytes } from "../../src/config/config-units.js";
import { makeTestCerts } from "../helpers/grpc-certs.js";

const VALID = `
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:9000", cluster: c }
clusters:
  - name: c
    endpoints: [{ address: "127.0.0.1:9101" }]
`;

const GRPC = `
listeners:
  - { name: g, protocol: grpc, listen: "127.0.0.1:8001", cluster: c }
clusters:
  - name: c
    endpoints: [{ address: "127.0.0.1:8101" }]
`;

describe("config loading", { timeout: 30_000 }, () => {
  it("fills in the defaults of docs/architecture.md", () => {
    const c = parseConfig(VALID, { baseDir: "/" });
    assert.equal(c.threads, 1);
    assert.equal(c.drain_timeout, "30s");
    assert.equal(c.log.level, "info");
    assert.equal(c.admin, undefined);
    const l = c.listeners[0];
    assert.deepEqual(
      [
        l?.max_connections,
        l?.idle_timeout,
        l?.handshake_timeout,
        l?.proxy_protocol,
        l?.engine,
        l?.max_header_list_size,
      ],
      [10000, "10m", "10s", "none", "frames", "16KiB"],
    );
    const cl = c.clusters[0];
    assert.equal(cl?.policy, "least_connections");
    assert.equal(cl?.connect_timeout, "2s");
    assert.equal(cl?.connect_attempts, 3);
    assert.equal(cl?.endpoints[0]?.weight, 1);
    assert.deepEqual(cl?.outlier_detection, {
      consecutive_failures: 5,
      base_ejection_time: "30s",
      max_ejection_percent: 10,
    });
    assert.equal(cl?.peek_max_bytes, "64KiB");
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.clusters[0]?.endpoints));
  });

  it("a grpc listener without engine gets frames; http2 stays available", () => {
    assert.equal(parseConfig(GRPC, { baseDir: "/" }).listeners[0]?.engine, "frames");
    const http2 = parseConfig(GRPC.replace("cluster: c }", "cluster: c, engine: http2 }"), { baseDir: "/" });
    assert.equal(http2.listeners[0]?.engine, "http2");
  });

  it("health_check defaults to tcp for clusters of tcp listeners and none otherwise", () => {
    const c = parseConfig(
      `
listeners:
  - { name: t, protocol: tcp, listen: "127.0.0.1:1", cluster: a }
  - { name: g, protocol: grpc, listen: "127.0.0.1:2", cluster: b }
clusters:
  - { name: a, endpoints: [{ address: "127.0.0.1:9" }] }
  - { name: b, endpoints: [{ address: "127.0.0.1:9" }] }
`,
      { baseDir: "/" },
    );
    assert.deepEqual(
      c.clusters.map((x) => x.health_check),
      [
        {
          type: "tcp",
          service: "",
          interval: "2s",
          timeout: "1s",
          healthy_threshold: 2,
          unhealthy_threshold: 3,
          watch: false,
        },
        {
          type: "none",
          service: "",
          interval: "2s",
          timeout: "1s",
          healthy_threshold: 2,
          unhealthy_threshold: 3,
          watch: false,
        },
      ],
    );
  });

  it("least_loaded runs without load_metrics (in-flight streams and latency only)", () => {
    const c = parseConfig(GRPC.replace("  - name: c\n", "  - name: c\n    policy: least_loaded\n"), {
      baseDir: "/",
    });
    assert.equal(c.clusters[0]?.policy, "least_loaded");
    assert.equal(c.clusters[0]?.load_metrics, undefined);
  });

  it("resolves relative file paths against the config's directory", () => {
    const c = parseConfig(
      `
listeners:
  - { name: g, protocol: grpc, listen: "127.0.0.1:1", cluster: a, tls: { cert: tls/crt.pem, key: /abs/key.pem } }
clusters:
  - { name: a, tls: { ca: ca.pem }, endpoints: [{ address: "127.0.0.1:9" }] }
`,
      { baseDir: "/etc/fulcrum" },
    );
    assert.equal(c.listeners[0]?.tls?.cert, "/etc/fulcrum/tls/crt.pem");
    assert.equal(c.listeners[0]?.tls?.key, "/abs/key.pem");
    assert.equal(c.clusters[0]?.tls?.ca, "/etc/fulcrum/ca.pem");
  });

  it("loadConfigFile resolves paths against the file's own directory", () => {
    const dir = mkdtempSync(join(tmpdir(), "fulcrum-config-"));
    try {
      mkdirSync(join(dir, "conf"));
      const file = join(dir, "conf", "fulcrum.yaml");
      writeFileSync(
        file,
        `
listeners:
  - name: g
    protocol: grpc
    listen: "127.0.0.1:0"
    cluster: a
    tls: { cert: tls/crt.pem, key: ../key.pem, client_ca: ca.pem }
clusters:
  - { name: a, endpoints: [{ address: "127.0.0.1:9" }] }
`,
      );
      const certs = makeTestCerts();
      try {
        mkdirSync(join(dir, "conf", "tls"));
        copyFileSync(certs.server.certPath, join(dir, "conf", "tls", "crt.pem"));
        copyFileSync(certs.server.keyPath, join(dir, "key.pem"));
        copyFileSync(certs.ca.certPath, join(dir, "conf", "ca.pem"));
      } finally {
        certs.remove();
      }
      const c = loadConfigFile(file);
      assert.deepEqual(c.listeners[0]?.tls, {
        cert: join(dir, "conf", "tls", "crt.pem"),
        key: join(dir, "key.pem"),
        client_ca: join(dir, "conf", "ca.pem"),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("loadConfigFile names a file it cannot read", () => {
    assert.throws(
      () => loadConfigFile("/nonexistent/fulcrum.yaml"),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.issues.length === 1 &&
        err.message === "(file): cannot read /nonexistent/fulcrum.yaml: ENOENT",
    );
  });

  it("the resolved config is deeply frozen", () => {
    const c = parseConfig(GRPC.replace("cluster: c }", "cluster: c, tls: { cert: a, key: b } }"), {
      baseDir: "/",
    });
    for (const o of [c, c.log, c.listeners, c.listeners[0], c.listeners[0]?.tls, c.clusters[0]?.health_check])
      assert.ok(Object.isFrozen(o));
    assert.throws(() => {
      (c.clusters[0]?.endpoints[0] as { weight: number }).weight = 5;
    }, TypeError);
  });

  it("redacts the admin token and key material", () => {
    const c = parseConfig(
      `
admin: { listen: "127.0.0.1:9901", token: s3cret }
listeners:
  - { name: g, protocol: grpc, listen: "127.0.0.1:1", cluster: a, tls: { cert: c.pem, key: k.pem } }
clusters:
  - { name: a, endpoints: [{ address: "127.0.0.1:9" }] }
`,
      { baseDir: "/x" },
    );
    const text = JSON.stringify(redactConfig(c));
    assert.ok(!text.includes("s3cret") && !text.includes("k.pem"), text);
    const redacted = redactConfig(c) as {
      admin: { token: string };
      listeners: { tls: { cert: string; key: string } }[];
    };
    assert.equal(redacted.admin.token, "<redacted>");
    assert.equal(redacted.listeners[0]?.tls.key, "<redacted>");
    assert.equal(redacted.listeners[0]?.tls.cert, "/x/c.pem");
    assert.equal(c.admin?.token, "s3cret", "the config itself is untouched");
  });

  it("leaves an empty admin token as it is (nothing to hide, and it shows auth is off)", () => {
    const c = parseConfig(`admin: { listen: "127.0.0.1:0" }\n${VALID}`, { baseDir: "/" });
    assert.equal((redactConfig(c) as { admin: { token: string } }).admin.token, "");
  });

  it("converts durations and sizes", () => {
    assert.deepEqual(["250ms", "2s", "10m", "1h", "0"].map(durationMs), [250, 2000, 600_000, 3_600_000, 0]);
    assert.equal(durationMs(0), 0);
    assert.deepEqual(["512B", "16KiB", "4MiB"].map(sizeBytes), [512, 16384, 4 * 1024 * 1024]);
    assert.throws(() => durationMs("5"), RangeError);
  });
});
