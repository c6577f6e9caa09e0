/**
 * Config validation: each mistake reported as `path: message`, all at once, in file order; defaults;
 * resolution; redaction.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError } from "../../src/config/config-error.js";
import { parseConfig, redactConfig } from "../../src/config/config-load.js";
import { durationMs, sizeBytes } from "../../src/config/config-units.js";

const VALID = `
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:9000", cluster: c }
clusters:
  - name: c
    endpoints: [{ address: "127.0.0.1:9101" }]
`;

function errorsOf(yaml: string): string[] {
  try {
    parseConfig(yaml, { baseDir: "/etc/fulcrum" });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail("expected a ConfigError");
}

describe("config", { timeout: 10_000 }, () => {
  it("fills in the defaults of DESIGN.md", () => {
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
      [10000, "10m", "10s", "none", "http2", "16KiB"],
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
        },
        {
          type: "none",
          service: "",
          interval: "2s",
          timeout: "1s",
          healthy_threshold: 2,
          unhealthy_threshold: 3,
        },
      ],
    );
  });

  const cases: { name: string; yaml: string; errors: string[] }[] = [
    {
      name: "a bare number for a duration",
      yaml: VALID.replace("clusters:", "drain_timeout: 5\nclusters:"),
      errors: ['drain_timeout: expected a duration like "2s", got 5'],
    },
    {
      name: "a bad unit",
      yaml: VALID.replace("cluster: c }", 'cluster: c, idle_timeout: "5 minutes" }'),
      errors: ['listeners[0].idle_timeout: expected a duration like "2s" or 0, got "5 minutes"'],
    },
    {
      name: "idle_timeout 0 means never",
      yaml: VALID.replace("cluster: c }", "cluster: c, idle_timeout: 0 }"),
      errors: [],
    },
    {
      name: "an address without a port",
      yaml: VALID.replace('"127.0.0.1:9101"', '"localhost"'),
      errors: ['clusters[0].endpoints[0].address: expected host:port, got "localhost"'],
    },
    {
      name: "an endpoint port of 0",
      yaml: VALID.replace('"127.0.0.1:9101"', '"127.0.0.1:0"'),
      errors: ["clusters[0].endpoints[0].address: port must be 1–65535, got 0"],
    },
    {
      name: "a port above 65535",
      yaml: VALID.replace('"127.0.0.1:9000"', '"127.0.0.1:70000"'),
      errors: ["listeners[0].listen: port must be 0–65535, got 70000"],
    },
    {
      name: "an IPv6 address",
      yaml: VALID.replace('"127.0.0.1:9000"', '"[::1]:9000"'),
      errors: [],
    },
    {
      name: "a weight out of range",
      yaml: VALID.replace('"127.0.0.1:9101" }', '"127.0.0.1:9101", weight: 1001 }'),
      errors: ["clusters[0].endpoints[0].weight: expected an integer from 1 to 1000, got 1001"],
    },
    {
      name: "a fractional weight",
      yaml: VALID.replace('"127.0.0.1:9101" }', '"127.0.0.1:9101", weight: 1.5 }'),
      errors: ["clusters[0].endpoints[0].weight: expected an integer from 1 to 1000, got 1.5"],
    },
    {
      name: "an unknown key, named by its own path",
      yaml: VALID.replace("clusters:", "lisen: x\nclusters:"),
      errors: ["lisen: unknown key"],
    },
    {
      name: "an unknown policy",
      yaml: VALID.replace("  - name: c\n", "  - name: c\n    policy: fastest\n"),
      errors: [
        'clusters[0].policy: expected one of round_robin | weighted_round_robin | least_connections | p2c | random | ip_hash | least_loaded, got "fastest"',
      ],
    },
    {
      name: "a missing required key",
      yaml: VALID.replace("protocol: tcp, ", ""),
      errors: ["listeners[0].protocol: required"],
    },
    {
      name: "duplicate names and endpoints",
      yaml: `
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:1", cluster: c }
  - { name: in, protocol: tcp, listen: "127.0.0.1:2", cluster: c }
clusters:
  - { name: c, endpoints: [{ address: "127.0.0.1:9" }, { address: "127.0.0.1:9" }] }
  - { name: c, endpoints: [{ address: "127.0.0.1:9" }] }
`,
      errors: [
        'listeners[1].name: duplicate listener name "in" (also listeners[0])',
        'clusters[0].endpoints[1].address: duplicate endpoint "127.0.0.1:9" (also endpoints[0])',
        'clusters[1].name: duplicate cluster name "c" (also clusters[0])',
      ],
    },
    {
      name: "a listener naming a missing cluster",
      yaml: VALID.replace("cluster: c }", "cluster: d }"),
      errors: ['listeners[0].cluster: no cluster named "d"'],
    },
    {
      name: "grpc-only keys on a tcp listener",
      yaml: VALID.replace("cluster: c }", "cluster: c, engine: frames }"),
      errors: ["listeners[0].engine: applies only to grpc listeners"],
    },
    {
      name: "balance_factor between 0 and 1",
      yaml: VALID.replace(
        "  - name: c\n",
        "  - name: c\n    affinity: { key: source_ip, balance_factor: 0.5 }\n",
      ),
      errors: ["clusters[0].affinity.balance_factor: expected 0 or a number ≥ 1, got 0.5"],
    },
    {
      name: "no endpoints",
      yaml: VALID.replace('[{ address: "127.0.0.1:9101" }]', "[]"),
      errors: ["clusters[0].endpoints: at least one endpoint is required"],
    },
    {
      name: "threads auto or a whole number",
      yaml: VALID.replace("clusters:", "threads: many\nclusters:"),
      errors: ['threads: expected a whole number ≥ 1 or "auto", got "many"'],
    },
    {
      name: "a YAML syntax error",
      yaml: "listeners: [",
      errors: [
        "(yaml line 1): Flow sequence in block collection must be sufficiently indented and end with a ]",
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      if (c.errors.length === 0) {
        parseConfig(c.yaml, { baseDir: "/" });
        return;
      }
      assert.deepEqual(errorsOf(c.yaml), c.errors);
    });
  }

  it("reports five different mistakes at once, by path, in file order", () => {
    const errors = errorsOf(`
drain_timeout: 30
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:9000", cluster: nowhere }
clusters:
  - name: c
    colour: blue
    endpoints:
      - address: foo
      - { address: "127.0.0.1:9102", weight: 0 }
`);
    assert.deepEqual(errors, [
      'drain_timeout: expected a duration like "2s", got 30',
      'listeners[0].cluster: no cluster named "nowhere"',
      "clusters[0].colour: unknown key",
      'clusters[0].endpoints[0].address: expected host:port, got "foo"',
      "clusters[0].endpoints[1].weight: expected an integer from 1 to 1000, got 0",
    ]);
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
    assert.equal((redactConfig(c) as { admin: { token: string } }).admin.token, "<redacted>");
  });

  it("converts durations and sizes", () => {
    assert.deepEqual(["250ms", "2s", "10m", "1h", "0"].map(durationMs), [250, 2000, 600_000, 3_600_000, 0]);
    assert.equal(durationMs(0), 0);
    assert.deepEqual(["512B", "16KiB", "4MiB"].map(sizeBytes), [512, 16384, 4 * 1024 * 1024]);
    assert.throws(() => durationMs("5"), RangeError);
  });
});
