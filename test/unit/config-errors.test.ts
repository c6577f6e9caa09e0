/**
 * Config validation errors: each mistake reported as `path: message`, all at once, in file order;
 * schema errors and cross-key errors alike.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError } from "../../src/config/config-error.js";
import { parseConfig } from "../../src/config/config-load.js";

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

function errorsOf(yaml: string): string[] {
  try {
    parseConfig(yaml, { baseDir: "/etc/fulcrum" });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail("expected a ConfigError");
}

describe("config errors", { timeout: 30_000 }, () => {
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
      name: "endpoint names: unique within a cluster (other clusters may reuse one), not empty",
      yaml: `
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:1", cluster: c }
clusters:
  - name: c
    endpoints:
      - { address: "127.0.0.1:9", name: gpu-a }
      - { address: "127.0.0.1:10", name: gpu-a }
      - { address: "127.0.0.1:11", name: "" }
  - { name: d, endpoints: [{ address: "127.0.0.1:9", name: gpu-a }] }
`,
      errors: [
        'clusters[0].endpoints[1].name: duplicate endpoint name "gpu-a" (also endpoints[0])',
        "clusters[0].endpoints[2].name: expected a non-empty name",
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
      name: "stream_balancing on a tcp listener",
      yaml: VALID.replace("cluster: c }", "cluster: c, stream_balancing: per_request }"),
      errors: ["listeners[0].stream_balancing: applies only to grpc listeners"],
    },
    {
      name: "stream_balancing not a known mode",
      yaml: VALID.replace("protocol: tcp", "protocol: grpc").replace(
        "cluster: c }",
        "cluster: c, stream_balancing: per_message }",
      ),
      errors: ['listeners[0].stream_balancing: expected one of per_stream | per_request, got "per_message"'],
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
      name: "0 is not a duration where the contract does not say 0 = never",
      yaml: VALID.replace("cluster: c }", "cluster: c, handshake_timeout: 0 }"),
      errors: ['listeners[0].handshake_timeout: expected a duration like "2s", got 0'],
    },
    {
      name: "a bare number for a size",
      yaml: GRPC.replace("cluster: c }", "cluster: c, max_header_list_size: 16384 }"),
      errors: ['listeners[0].max_header_list_size: expected a size like "64KiB", got 16384'],
    },
    {
      name: "a size in the wrong unit",
      yaml: GRPC.replace("cluster: c }", "cluster: c, max_header_list_size: 16kb }"),
      errors: ['listeners[0].max_header_list_size: expected a size like "64KiB", got "16kb"'],
    },
    {
      name: "a bare number for a name",
      yaml: VALID.replace("name: c\n", "name: 7\n").replace("cluster: c }", "cluster: 7 }"),
      errors: ["listeners[0].cluster: expected a name, got 7", "clusters[0].name: expected a name, got 7"],
    },
    {
      name: "a bare number for an address",
      yaml: VALID.replace('"127.0.0.1:9000"', "9000"),
      errors: ["listeners[0].listen: expected host:port, got 9000"],
    },
    {
      name: "listen may use port 0 (the OS picks one)",
      yaml: VALID.replace('"127.0.0.1:9000"', '"127.0.0.1:0"'),
      errors: [],
    },
    {
      name: "an IPv6 endpoint with a zone",
      yaml: VALID.replace('"127.0.0.1:9101"', '"[fe80::1%eth0]:9101"'),
      errors: [],
    },
    {
      name: "brackets around something that is not IPv6",
      yaml: VALID.replace('"127.0.0.1:9101"', '"[127.0.0.1]:9101"'),
      errors: ['clusters[0].endpoints[0].address: expected host:port, got "[127.0.0.1]:9101"'],
    },
    {
      name: "an unbracketed IPv6 address",
      yaml: VALID.replace('"127.0.0.1:9101"', '"::1:9101"'),
      errors: ['clusters[0].endpoints[0].address: expected host:port, got "::1:9101"'],
    },
    {
      name: "a weight given as a string",
      yaml: VALID.replace('"127.0.0.1:9101" }', '"127.0.0.1:9101", weight: "2" }'),
      errors: ['clusters[0].endpoints[0].weight: expected an integer from 1 to 1000, got "2"'],
    },
    {
      name: "weight 0",
      yaml: VALID.replace('"127.0.0.1:9101" }', '"127.0.0.1:9101", weight: 0 }'),
      errors: ["clusters[0].endpoints[0].weight: expected an integer from 1 to 1000, got 0"],
    },
    {
      name: "an unknown key deep inside, one error per key",
      yaml: VALID.replace('"127.0.0.1:9101" }', '"127.0.0.1:9101", wieght: 2, zone: a }'),
      errors: [
        'clusters[0].endpoints[0].wieght: unknown key (did you mean "weight"?)',
        "clusters[0].endpoints[0].zone: unknown key",
      ],
    },
    {
      name: "an unknown key in a listener",
      yaml: VALID.replace("cluster: c }", "cluster: c, bogus: true }"),
      errors: ["listeners[0].bogus: unknown key"],
    },
    {
      name: "a list where a mapping belongs",
      yaml: VALID.replace("clusters:", "log: [info]\nclusters:"),
      errors: ["log: expected a mapping, got a list"],
    },
    {
      name: "an empty key is null, not the default",
      yaml: VALID.replace("cluster: c }", "cluster: c, idle_timeout: }"),
      errors: ['listeners[0].idle_timeout: expected a duration like "2s" or 0, got null'],
    },
    {
      name: "threads 0",
      yaml: VALID.replace("clusters:", "threads: 0\nclusters:"),
      errors: ['threads: expected a whole number ≥ 1 or "auto", got 0'],
    },
    {
      name: 'threads "auto"',
      yaml: VALID.replace("clusters:", "threads: auto\nclusters:"),
      errors: [],
    },
    {
      name: "a health_check block without its type",
      yaml: VALID.replace("  - name: c\n", "  - name: c\n    health_check: { interval: 1s }\n"),
      errors: ["clusters[0].health_check.type: required"],
    },
    {
      name: "an unknown health_check type",
      yaml: VALID.replace("  - name: c\n", "  - name: c\n    health_check: { type: http }\n"),
      errors: [
        'clusters[0].health_check.type: expected one of tcp | grpc | none | triton | torchserve, got "http"',
      ],
    },
    {
      name: "an affinity block without its key",
      yaml: VALID.replace("  - name: c\n", "  - name: c\n    affinity: { balance_factor: 2 }\n"),
      errors: ["clusters[0].affinity.key: required"],
    },
    {
      name: "an affinity key of no known kind",
      yaml: GRPC.replace("  - name: c\n", "  - name: c\n    affinity: { key: cookie }\n"),
      errors: [
        'clusters[0].affinity.key: expected source_ip | header:<name> | triton_sequence | prompt_prefix, got "cookie"',
      ],
    },
    {
      name: "a header affinity key on a cluster only tcp listeners use",
      yaml: VALID.replace("  - name: c\n", "  - name: c\n    affinity: { key: 'header:x-session-id' }\n"),
      errors: [
        'clusters[0].affinity.key: "header:x-session-id" needs a grpc listener; tcp listeners can use source_ip',
      ],
    },
    {
      name: "triton_sequence on a cluster only tcp listeners use",
      yaml: VALID.replace("  - name: c\n", "  - name: c\n    affinity: { key: triton_sequence }\n"),
      errors: [
        'clusters[0].affinity.key: "triton_sequence" needs a grpc listener; tcp listeners can use source_ip',
      ],
    },
    {
      name: "triton_sequence with its idle timeout on a grpc cluster",
      yaml: GRPC.replace(
        "  - name: c\n",
        "  - name: c\n    affinity: { key: triton_sequence, sequence_idle_timeout: 5m }\n",
      ),
      errors: [],
    },
    {
      name: "sequence_idle_timeout without triton_sequence",
      yaml: GRPC.replace(
        "  - name: c\n",
        "  - name: c\n    affinity: { key: 'header:x-s', sequence_idle_timeout: 5m }\n",
      ),
      errors: ["clusters[0].affinity.sequence_idle_timeout: applies only to key: triton_sequence"],
    },
    {
      name: "prompt_prefix with its keys on a grpc cluster",
      yaml: GRPC.replace(
        "  - name: c\n",
        "  - name: c\n    affinity: { key: prompt_prefix, input: prompt, block_bytes: 32, max_blocks: 64, index_blocks: 1000, balance_factor: 1.25 }\n",
      ),
      errors: [],
    },
    {
      name: "prompt_prefix keys under another affinity key",
      yaml: GRPC.replace(
        "  - name: c\n",
        "  - name: c\n    affinity: { key: source_ip, block_bytes: 64, input: text_input, balance_slack: 1, min_match: 0.2 }\n",
      ),
      errors: [
        "clusters[0].affinity.block_bytes: applies only to key: prompt_prefix",
        "clusters[0].affinity.input: applies only to key: prompt_prefix",
        "clusters[0].affinity.balance_slack: applies only to key: prompt_prefix",
        "clusters[0].affinity.min_match: applies only to key: prompt_prefix",
      ],
    },
    {
      name: "balance_factor 1 and 1.25 are bounded load",
      yaml: GRPC.replace(
        "  - name: c\n",
        "  - name: c\n    affinity: { key: source_ip, balance_factor: 1.25 }\n",
      ),
      errors: [],
    },
    {
      name: "balance_factor as a string",
      yaml: GRPC.replace(
        "  - name: c\n",
        "  - name: c\n    affinity: { key: source_ip, balance_factor: '2' }\n",
      ),
      errors: ['clusters[0].affinity.balance_factor: expected 0 or a number ≥ 1, got "2"'],
    },
    {
      name: "least_loaded with load_metrics",
      yaml: GRPC.replace("  - name: c\n", "  - name: c\n    policy: least_loaded\n    load_metrics: {}\n"),
      errors: [],
    },
    {
      name: "load_metrics without least_loaded",
      yaml: GRPC.replace("  - name: c\n", "  - name: c\n    load_metrics: { port: 8002 }\n"),
      errors: ["clusters[0].load_metrics: applies only to policy: least_loaded"],
    },
    {
      name: "load_metrics with weighted metrics and stale_after",
      yaml: GRPC.replace(
        "  - name: c\n",
        "  - name: c\n    policy: least_loaded\n    load_metrics: { interval: 50ms, stale_after: 500ms, metrics: [{ name: a }, { name: b, weight: 2.5, labels: { model: m } }] }\n",
      ),
      errors: [],
    },
    {
      name: "load_metrics with both metric and metrics",
      yaml: GRPC.replace(
        "  - name: c\n",
        "  - name: c\n    policy: least_loaded\n    load_metrics: { metric: x, metrics: [{ name: a }] }\n",
      ),
      errors: ["clusters[0].load_metrics.metrics: use metric or metrics, not both"],
    },
    {
      name: "load_metrics with an empty metrics list",
      yaml: GRPC.replace(
        "  - name: c\n",
        "  - name: c\n    policy: least_loaded\n    load_metrics: { metrics: [] }\n",
      ),
      errors: ["clusters[0].load_metrics.metrics: must name at least one metric"],
    },
    {
      name: "proxy_protocol on a grpc listener",
      yaml: GRPC.replace("cluster: c }", "cluster: c, proxy_protocol: v2 }"),
      errors: ["listeners[0].proxy_protocol: applies only to tcp listeners"],
    },
    {
      name: "proxy_protocol none on a grpc listener is the default, so allowed",
      yaml: GRPC.replace("cluster: c }", "cluster: c, proxy_protocol: none }"),
      errors: [],
    },
    {
      name: "tls and max_header_list_size on a tcp listener",
      yaml: VALID.replace(
        "cluster: c }",
        "cluster: c, max_header_list_size: 8KiB, tls: { cert: a, key: b } }",
      ),
      errors: [
        "listeners[0].max_header_list_size: applies only to grpc listeners",
        "listeners[0].tls: applies only to grpc listeners",
      ],
    },
    {
      name: "a tls block without its key",
      yaml: GRPC.replace("cluster: c }", "cluster: c, tls: { cert: a.pem } }"),
      errors: ["listeners[0].tls.key: required"],
    },
    {
      name: "a value the schema rejects gets no second cross-key complaint",
      yaml: VALID.replace("cluster: c }", "cluster: c, engine: fast }"),
      errors: ['listeners[0].engine: expected one of http2 | frames, got "fast"'],
    },
    {
      name: "an empty file names both required lists, in schema order",
      yaml: "",
      errors: ["listeners: required", "clusters: required"],
    },
    {
      name: "a document that is not a mapping",
      yaml: "- a\n",
      errors: ["(root): expected a mapping, got a list"],
    },
    {
      name: "a YAML duplicate key",
      yaml: VALID.replace("clusters:", "threads: 1\nthreads: 2\nclusters:"),
      errors: ["(yaml line 5): Map keys must be unique"],
    },
    {
      name: "a cluster's tls behind a tcp listener (its bytes would go out in cleartext)",
      yaml: VALID.replace("  - name: c\n", "  - name: c\n    tls: { server_name: w.local }\n"),
      errors: ['clusters[0].tls: upstream TLS is for grpc listeners; cluster "c" serves tcp listener "in"'],
    },
    {
      name: "a cluster's tls behind a tcp and a grpc listener: the tcp one is named",
      yaml: `
listeners:
  - { name: g, protocol: grpc, listen: "127.0.0.1:1", cluster: c }
  - { name: t1, protocol: tcp, listen: "127.0.0.1:2", cluster: c }
  - { name: t2, protocol: tcp, listen: "127.0.0.1:3", cluster: c }
clusters:
  - { name: c, tls: { insecure_skip_verify: true }, endpoints: [{ address: "127.0.0.1:9" }] }
`,
      errors: ['clusters[0].tls: upstream TLS is for grpc listeners; cluster "c" serves tcp listener "t1"'],
    },
    {
      name: "a cluster's tls behind grpc listeners only",
      yaml: GRPC.replace("  - name: c\n", "  - name: c\n    tls: { server_name: w.local }\n"),
      errors: [],
    },
    {
      name: "a listener tls on a tcp listener",
      yaml: VALID.replace("cluster: c }", "cluster: c, tls: { cert: a.pem, key: b.pem } }"),
      errors: ["listeners[0].tls: applies only to grpc listeners"],
    },
    {
      name: "the shipped placeholder admin token on 0.0.0.0",
      yaml: `admin: { listen: "0.0.0.0:9901", token: "replace-me" }\n${VALID}`,
      errors: [
        'admin.token: "replace-me" is the shipped placeholder; set a real token before exposing admin.listen 0.0.0.0:9901',
      ],
    },
    {
      name: "the placeholder admin token on [::]",
      yaml: `admin: { listen: "[::]:9901", token: "replace-me" }\n${VALID}`,
      errors: [
        'admin.token: "replace-me" is the shipped placeholder; set a real token before exposing admin.listen [::]:9901',
      ],
    },
    {
      name: "the placeholder admin token on a host name",
      yaml: `admin: { listen: "fulcrum.internal:9901", token: "replace-me" }\n${VALID}`,
      errors: [
        'admin.token: "replace-me" is the shipped placeholder; set a real token before exposing admin.listen fulcrum.internal:9901',
      ],
    },
    ...["127.0.0.1:9901", "127.1.2.3:0", "[::1]:9901", "localhost:9901"].map((listen) => ({
      name: `the placeholder admin token on loopback ${listen}`,
      yaml: `admin: { listen: "${listen}", token: "replace-me" }\n${VALID}`,
      errors: [],
    })),
    {
      name: "the placeholder admin token on the default admin.listen (loopback)",
      yaml: `admin: { token: "replace-me" }\n${VALID}`,
      errors: [],
    },
    {
      name: "a real admin token on 0.0.0.0",
      yaml: `admin: { listen: "0.0.0.0:9901", token: "0b1c8e2f" }\n${VALID}`,
      errors: [],
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

  it("ConfigError's message is one `path: message` line per issue", () => {
    const err = new ConfigError([
      { path: "a", message: "x" },
      { path: "b[0].c", message: "y" },
    ]);
    assert.equal(err.message, "a: x\nb[0].c: y");
    assert.equal(err.name, "ConfigError");
    assert.ok(err instanceof Error);
  });
});
