/**
 * The files a config names: `loadConfigFile` (behind `check`, `run` and reload) reads and parses
 * every TLS certificate, key and CA, resolved against the config's directory, and reports each
 * problem at its YAML path with the absolute path it tried, never with key material.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError } from "../../src/config/config-error.js";
import { unreadableFiles } from "../../src/config/config-files.js";
import { loadConfigFile, parseConfig } from "../../src/config/config-load.js";
import { makeTestCerts, type TestCerts } from "../helpers/grpc-certs.js";

/** The key's base64 lines, and all of them joined: none may appear in any message. */
function keyMaterial(pem: Buffer): string[] {
  const lines = pem
    .toString("utf8")
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("-----"));
  return [...lines.filter((l) => l.length >= 16), lines.join("")];
}

function tlsConfig(listenerTls: string, clusterTls = ""): string {
  return `
listeners:
  - { name: g, protocol: grpc, listen: "127.0.0.1:0", cluster: a, tls: ${listenerTls} }
clusters:
  - { name: a, ${clusterTls ? `tls: ${clusterTls}, ` : ""}endpoints: [{ address: "127.0.0.1:9" }] }
`;
}

describe("config files", { timeout: 30_000 }, () => {
  let certs: TestCerts;
  let dir: string;
  let n = 0;
  before(() => {
    certs = makeTestCerts();
    dir = mkdtempSync(join(tmpdir(), "fulcrum-config-files-"));
    mkdirSync(join(dir, "tls"));
    copyFileSync(certs.server.certPath, join(dir, "tls", "server.crt"));
    copyFileSync(certs.server.keyPath, join(dir, "tls", "server.key"));
    copyFileSync(certs.client.keyPath, join(dir, "tls", "client.key"));
    copyFileSync(certs.ca.certPath, join(dir, "ca.crt"));
    writeFileSync(
      join(dir, "garbage.pem"),
      "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    );
    writeFileSync(
      join(dir, "bundle.pem"),
      Buffer.concat([
        certs.ca.cert,
        Buffer.from("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
      ]),
    );
    writeFileSync(join(dir, "empty.pem"), "");
    writeFileSync(join(dir, "locked.pem"), "x", { mode: 0o000 });
    mkdirSync(join(dir, "a-dir"));
  });
  after(() => {
    certs.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes `yaml` as a config file in the test directory and returns loadConfigFile's errors. */
  function errorsOf(yaml: string): string[] {
    const file = join(dir, `config-${n++}.yaml`);
    writeFileSync(file, yaml);
    try {
      loadConfigFile(file);
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.issues.map((i) => `${i.path}: ${i.message}`);
    }
    return [];
  }

  it("a config whose files are all there and match loads, with the paths resolved", () => {
    const file = join(dir, "good.yaml");
    writeFileSync(
      file,
      tlsConfig("{ cert: tls/server.crt, key: tls/server.key, client_ca: ca.crt }", "{ ca: ./ca.crt }"),
    );
    const c = loadConfigFile(file);
    assert.deepEqual(c.listeners[0]?.tls, {
      cert: join(dir, "tls", "server.crt"),
      key: join(dir, "tls", "server.key"),
      client_ca: join(dir, "ca.crt"),
    });
    assert.equal(c.clusters[0]?.tls?.ca, join(dir, "ca.crt"));
    assert.deepEqual(unreadableFiles(c), [], "the resolved config passes the runtime's check too");
  });

  const cases: { name: string; yaml: () => string; errors: () => string[] }[] = [
    {
      name: "missing files, each by path with the absolute path tried",
      yaml: () =>
        tlsConfig(
          "{ cert: tls.crt, key: ../nowhere/tls.key, client_ca: ca-missing.crt }",
          "{ ca: no/ca.pem }",
        ),
      errors: () => [
        `listeners[0].tls.cert: cannot read "${join(dir, "tls.crt")}": no such file`,
        `listeners[0].tls.key: cannot read "${join(dir, "..", "nowhere", "tls.key")}": no such file`,
        `listeners[0].tls.client_ca: cannot read "${join(dir, "ca-missing.crt")}": no such file`,
        `clusters[0].tls.ca: cannot read "${join(dir, "no", "ca.pem")}": no such file`,
      ],
    },
    {
      name: "a directory",
      yaml: () => tlsConfig("{ cert: a-dir, key: tls/server.key }"),
      errors: () => [`listeners[0].tls.cert: cannot read "${join(dir, "a-dir")}": is a directory`],
    },
    {
      name: "a certificate that is not PEM, or does not parse",
      yaml: () => tlsConfig("{ cert: tls/server.key, key: tls/server.key }", "{ ca: garbage.pem }"),
      errors: () => [
        `listeners[0].tls.cert: "${join(dir, "tls", "server.key")}" holds no PEM certificate`,
        `clusters[0].tls.ca: "${join(dir, "garbage.pem")}" holds a PEM certificate that cannot be parsed`,
      ],
    },
    {
      name: "a CA bundle with one bad certificate",
      yaml: () => tlsConfig("{ cert: tls/server.crt, key: tls/server.key, client_ca: bundle.pem }"),
      errors: () => [
        `listeners[0].tls.client_ca: "${join(dir, "bundle.pem")}" holds a PEM certificate that cannot be parsed (number 2 of 2)`,
      ],
    },
    {
      name: "a key that is a certificate, and an empty file",
      yaml: () => tlsConfig("{ cert: tls/server.crt, key: ca.crt, client_ca: empty.pem }"),
      errors: () => [
        `listeners[0].tls.key: "${join(dir, "ca.crt")}" holds no PEM private key`,
        `listeners[0].tls.client_ca: "${join(dir, "empty.pem")}" holds no PEM certificate`,
      ],
    },
    {
      name: "a key that does not match the certificate",
      yaml: () => tlsConfig("{ cert: tls/server.crt, key: tls/client.key }"),
      errors: () => [
        `listeners[0].tls.key: "${join(dir, "tls", "client.key")}" does not match the certificate of listeners[0].tls.cert`,
      ],
    },
    {
      name: "a tls block without its key: the certificate is still read",
      yaml: () => tlsConfig("{ cert: missing.crt }"),
      errors: () => [
        "listeners[0].tls.key: required",
        `listeners[0].tls.cert: cannot read "${join(dir, "missing.crt")}": no such file`,
      ],
    },
    {
      name: "the files of a block the config refuses are not read",
      yaml: () =>
        tlsConfig("{ cert: missing.crt, key: missing.key }").replace("protocol: grpc", "protocol: tcp"),
      errors: () => ["listeners[0].tls: applies only to grpc listeners"],
    },
    {
      name: "files and other mistakes are reported together, in file order",
      yaml: () => `drain_timeout: 5\n${tlsConfig("{ cert: missing.crt, key: tls/server.key }")}`,
      errors: () => [
        'drain_timeout: expected a duration like "2s", got 5',
        `listeners[0].tls.cert: cannot read "${join(dir, "missing.crt")}": no such file`,
      ],
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      assert.deepEqual(errorsOf(c.yaml()), c.errors());
    });

  it(
    "an unreadable file (permission denied)",
    { skip: process.getuid?.() === 0 ? "root reads anything" : false },
    () => {
      assert.deepEqual(errorsOf(tlsConfig("{ cert: locked.pem, key: tls/server.key }")), [
        `listeners[0].tls.cert: cannot read "${join(dir, "locked.pem")}": permission denied`,
      ]);
    },
  );

  it("a key pasted inline, where its file name belongs, is refused without showing it", () => {
    const indented = certs.server.key
      .toString("utf8")
      .trimEnd()
      .split("\n")
      .map((l) => `        ${l}`)
      .join("\n");
    const yaml = `
listeners:
  - name: g
    protocol: grpc
    listen: "127.0.0.1:0"
    cluster: a
    tls:
      cert: tls/server.crt
      key: |
${indented}
clusters:
  - { name: a, endpoints: [{ address: "127.0.0.1:9" }] }
`;
    const errors = errorsOf(yaml);
    assert.deepEqual(errors, [
      "listeners[0].tls.key: expected the name of a private key file (PEM), got what looks like content (not shown)",
    ]);
    for (const secret of keyMaterial(certs.server.key))
      assert.ok(!errors.join("\n").includes(secret), "key material in the message");
  });

  it("no message carries key material, whatever the mistake", () => {
    const texts = cases.flatMap((c) => errorsOf(c.yaml())).join("\n");
    for (const key of [certs.server.key, certs.client.key])
      for (const secret of keyMaterial(key)) assert.ok(!texts.includes(secret));
  });

  it("parseConfig reads no file unless asked (readFiles), the runtime's unreadableFiles does", () => {
    const yaml = tlsConfig("{ cert: missing.crt, key: missing.key }");
    const c = parseConfig(yaml, { baseDir: dir });
    assert.deepEqual(
      unreadableFiles(c).map((i) => `${i.path}: ${i.message}`),
      [
        `listeners[0].tls.cert: cannot read "${join(dir, "missing.crt")}": no such file`,
        `listeners[0].tls.key: cannot read "${join(dir, "missing.key")}": no such file`,
      ],
    );
    assert.throws(() => parseConfig(yaml, { baseDir: dir, readFiles: true }), ConfigError);
  });
});
