/**
 * Security basics, against the CLI as it is deployed: the admin listener exists only when configured
 * and defaults to loopback; POSTs need the bearer token when one is set (anything else: 401 and no
 * change); a TLS listener with client_ca refuses clients without a certificate from that CA; and no
 * secret (admin token, private key material) shows in any log line at debug level, /status,
 * /metrics, admin replies or `check` output, whatever the operator does, including mistakes.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import type { SimTcpWorker } from "../../src/sim/sim-tcp-worker.js";
import { makeTestCerts, type TestCerts } from "../helpers/grpc-certs.js";
import { echoClient, who } from "../helpers/grpc-client.js";
import { startGrpcWorkers } from "../helpers/grpc-test-worker.js";
import { startWorkers, whoAnswers } from "../helpers/harness.js";
import { runFulcrum, startFulcrumProcess, until, type FulcrumProcess } from "./helpers/fulcrum-process.js";

/** The base64 lines of a PEM private key, and all of them joined: what "key material" looks like in text. */
function keyMaterial(pem: Buffer): string[] {
  const lines = pem
    .toString("utf8")
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("-----"));
  return [...lines.filter((l) => l.length >= 16), lines.join(""), lines.join("\\n")];
}

/** Which of `secrets` occur in `text` (each shown by its first 8 characters only). */
function leaked(text: string, secrets: readonly string[]): string[] {
  return secrets.filter((s) => text.includes(s)).map((s) => `${s.slice(0, 8)}…`);
}

/** What a TLS client without a certificate gets from `port`: application bytes, and how it ended. */
function tlsWithoutCertificate(port: number, ca: Buffer): Promise<{ bytes: number; end: string }> {
  return new Promise((resolve) => {
    let bytes = 0;
    let end = "still_open";
    const socket = tlsConnect({
      host: "127.0.0.1",
      port,
      ca,
      servername: "localhost",
      ALPNProtocols: ["h2"],
    });
    socket.on("data", (d: Buffer) => (bytes += d.length));
    socket.on("error", (err: NodeJS.ErrnoException) => (end = err.code ?? err.message));
    socket.once("end", () => (end = end === "still_open" ? "fin" : end));
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve({ bytes, end });
    });
  });
}

const ADMIN_TOKEN_HEADERS = (token: string): Record<string, Record<string, string>> => ({
  "no header": {},
  "an empty bearer": { authorization: "Bearer " },
  "a wrong token": { authorization: "Bearer wrong" },
  "the token with its last character changed": {
    authorization: `Bearer ${token.slice(0, -1)}${token.endsWith("x") ? "y" : "x"}`,
  },
  "the token plus one character": { authorization: `Bearer ${token}x` },
  "the token less its last character": { authorization: `Bearer ${token.slice(0, -1)}` },
  "the token as Basic credentials": {
    authorization: `Basic ${Buffer.from(`admin:${token}`).toString("base64")}`,
  },
  "the token without a scheme": { authorization: token },
  "the token in another header": { "x-admin-token": token },
});

describe("security basics (fulcrum as a child process)", { timeout: 240_000 }, () => {
  let certs: TestCerts;
  let workers: SimTcpWorker[] = [];
  const dir = mkdtempSync(join(tmpdir(), "fulcrum-security-"));
  const running: FulcrumProcess[] = [];

  before(async () => {
    certs = makeTestCerts();
    workers = await startWorkers(["a", "b"]);
  });
  after(async () => {
    for (const f of running) await f.stop();
    await Promise.all(workers.map((w) => w.close()));
    certs.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  const tcpBlock = (): string => `
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:0", cluster: w }
clusters:
  - name: w
    policy: round_robin
    health_check: { type: none }
    endpoints:
${workers.map((w) => `      - { address: "127.0.0.1:${w.port}", weight: 1 }`).join("\n")}
`;

  it("admin absent = no admin listener; admin without listen = 127.0.0.1:9901, loopback", async () => {
    const f = await startFulcrumProcess({ yaml: tcpBlock(), listening: 1 });
    running.push(f);
    await new Promise((r) => setTimeout(r, 500)); // the admin line would follow the listener's at once
    assert.deepEqual(
      f.lines.filter((l) => l.msg === "listening").map((l) => l.listener),
      ["in"],
    );
    // Seen by the kernel: the only listening socket the process holds is the listener's.
    assert.deepEqual(f.listeningSockets(), [f.address("in")]);

    // The default address, read from the resolved config rather than bound (9901 may be taken).
    const file = join(dir, "admin-default.yaml");
    writeFileSync(file, `admin: { token: "abc" }\n${tcpBlock()}`);
    const r = await runFulcrum(["check", "--config", file]);
    assert.equal(r.code, 0, r.stderr);
    const resolved = JSON.parse(r.stdout) as { admin: { listen: string; token: string } };
    assert.equal(resolved.admin.listen, "127.0.0.1:9901");
    assert.equal(resolved.admin.token, "<redacted>");
  });

  it("POSTs without the token, or with a wrong one, answer 401 and change nothing", async () => {
    const token = randomBytes(16).toString("hex");
    const yaml = `admin: { listen: "127.0.0.1:0", token: "${token}" }\n${tcpBlock()}`;
    const f = await startFulcrumProcess({ yaml, listening: 2 });
    running.push(f);
    // An unauthorised reload would show: the file on disk now says weight 7.
    f.writeConfig(yaml.replaceAll("weight: 1", "weight: 7"));
    const state = async (): Promise<string> =>
      JSON.stringify({
        endpoints: (await f.status()).clusters.map((c) =>
          c.endpoints.map((e) => [e.address, e.weight, e.drained]),
        ),
        reloads: await f.metric("fulcrum_config_reloads_total"),
      });
    const before = await state();
    const address = `127.0.0.1:${workers[0]?.port}`;
    const routes: [string, unknown][] = [
      ["/endpoints/drain", { cluster: "w", address }],
      ["/endpoints/undrain", { cluster: "w", address }],
      ["/endpoints/weight", { cluster: "w", address, weight: 9 }],
      ["/reload", {}],
    ];
    for (const [route, body] of routes) {
      for (const [what, headers] of Object.entries(ADMIN_TOKEN_HEADERS(token))) {
        const reply = await f.admin("POST", route, {
          headers: { "content-type": "application/json", ...headers },
          body: JSON.stringify(body),
        });
        assert.equal(reply.status, 401, `POST ${route} with ${what}: ${reply.status} ${reply.text}`);
      }
      const inQuery = await f.admin("POST", `${route}?token=${token}`, { body: JSON.stringify(body) });
      assert.equal(inQuery.status, 401, `POST ${route} with the token in the query`);
    }
    assert.equal(await state(), before, "nothing changed");
    assert.equal((await f.admin("GET", "/status")).status, 200, "GETs need no token");

    // The right token works, so the 401s above were refusals and not a broken route.
    const auth = { authorization: `Bearer ${token}` };
    const drain = await f.admin("POST", "/endpoints/drain", {
      headers: auth,
      body: JSON.stringify({ cluster: "w", address }),
    });
    assert.equal(drain.status, 200, drain.text);
    assert.equal((await f.admin("POST", "/reload", { headers: auth })).status, 200);
    const after = (await f.status()).clusters[0]?.endpoints ?? [];
    assert.deepEqual(
      after.map((e) => [e.weight, e.drained]),
      [
        [7, true],
        [7, false],
      ],
    );
  });

  for (const engine of ["http2", "frames"] as const) {
    it(`a TLS gRPC listener with client_ca (engine ${engine}) refuses clients without a certificate from its CA`, async () => {
      const [worker] = await startGrpcWorkers(["g"]);
      assert.ok(worker);
      const clients: grpc.Client[] = [];
      try {
        const f = await startFulcrumProcess({
          listening: 1,
          yaml: `
listeners:
  - name: g
    protocol: grpc
    engine: ${engine}
    listen: "127.0.0.1:0"
    cluster: w
    tls: { cert: "${certs.server.certPath}", key: "${certs.server.keyPath}", client_ca: "${certs.ca.certPath}" }
clusters:
  - { name: w, health_check: { type: none }, endpoints: [{ address: "${worker.address}" }] }
`,
        });
        running.push(f);
        const target = f.target("g");
        const raw = await tlsWithoutCertificate(target.port, certs.ca.cert);
        assert.equal(raw.bytes, 0, `no HTTP/2 byte without a certificate (${raw.end})`);
        assert.notEqual(raw.end, "still_open", "the connection is closed");
        const credentials = {
          none: grpc.credentials.createSsl(certs.ca.cert),
          stranger: grpc.credentials.createSsl(certs.ca.cert, certs.otherClient.key, certs.otherClient.cert),
          member: grpc.credentials.createSsl(certs.ca.cert, certs.client.key, certs.client.cert),
        };
        for (const name of ["none", "stranger"] as const) {
          const client = echoClient(target, { credentials: credentials[name] });
          clients.push(client);
          const o = await who(client, { deadlineMs: 5000 });
          assert.ok(!o.ok && o.code === grpc.status.UNAVAILABLE, `${name}: ${JSON.stringify(o)}`);
        }
        assert.equal(worker.calls, 0, "no refused client reached the worker");
        const member = echoClient(target, { credentials: credentials.member });
        clients.push(member);
        const o = await who(member, { deadlineMs: 5000 });
        assert.ok(o.ok && o.value.toString() === "g", JSON.stringify(o));
        assert.equal(worker.calls, 1);
      } finally {
        for (const c of clients) c.close();
        await worker.close();
      }
    });
  }

  it("no secret in any log line (debug), /status, /metrics, admin replies or check output", async () => {
    const token = randomBytes(24).toString("hex");
    const nextToken = randomBytes(24).toString("hex");
    const nearMiss = `${token.slice(0, -1)}${token.endsWith("0") ? "1" : "0"}`;
    const secrets = [token, nextToken, nearMiss, token.slice(0, 24), ...keyMaterial(certs.server.key)];
    const config = (t: string, extra = ""): string => `
admin: { listen: "127.0.0.1:0", token: "${t}" }
log: { level: debug }
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:0", cluster: w }
  - name: g
    protocol: grpc
    listen: "127.0.0.1:0"
    cluster: w
    tls: { cert: "${certs.server.certPath}", key: "${certs.server.keyPath}", client_ca: "${certs.ca.certPath}" }
clusters:
  - name: w
    health_check: { type: tcp, interval: 200ms, timeout: 100ms }
    endpoints: [{ address: "127.0.0.1:${workers[0]?.port}" }${extra}]
`;
    const broken = config(token, ', { address: "127.0.0.1:99999" }');
    const texts: [string, string][] = [];
    const f = await startFulcrumProcess({
      yaml: config(token),
      listening: 3,
      args: ["--log-level", "debug"],
    });
    running.push(f);
    const auth = (t: string): { headers: Record<string, string> } => ({
      headers: { authorization: `Bearer ${t}` },
    });
    const drainBody = JSON.stringify({ cluster: "w", address: `127.0.0.1:${workers[0]?.port}` });
    for (const path of ["/", "/status", "/metrics", "/readyz", "/healthz"])
      texts.push([`GET ${path}`, (await f.admin("GET", path)).text]);
    const post = async (what: string, path: string, t: string, body = "{}"): Promise<number> => {
      const r = await f.admin("POST", path, { ...auth(t), body });
      texts.push([what, r.text]);
      return r.status;
    };
    assert.equal(await post("drain, near-miss token", "/endpoints/drain", nearMiss, drainBody), 401);
    assert.equal(await post("drain", "/endpoints/drain", token, drainBody), 200);
    assert.equal(await post("undrain", "/endpoints/undrain", token, drainBody), 200);
    assert.equal(await whoAnswers(f.target("in").port), "a");
    await tlsWithoutCertificate(f.target("g").port, certs.ca.cert); // a handshake failure, logged at debug
    f.writeConfig(broken);
    assert.equal(await post("reload, broken config", "/reload", token), 400);
    const from = f.lines.length;
    f.channel.signal("SIGHUP");
    await until(
      () => f.lines.slice(from).some((l) => l.level === "error"),
      10_000,
      "the SIGHUP reload error",
    );
    // A valid reload that rotates the token: the old one stops working, the new one works.
    f.writeConfig(config(nextToken));
    assert.equal(await post("reload, new token", "/reload", token), 200);
    assert.equal(await post("drain, old token", "/endpoints/drain", token, drainBody), 401);
    assert.equal(await post("drain, new token", "/endpoints/drain", nextToken, drainBody), 200);
    texts.push(["GET /status at the end", (await f.admin("GET", "/status")).text]);
    texts.push(["GET /metrics at the end", (await f.admin("GET", "/metrics")).text]);
    assert.equal(await f.stop(), 0);
    texts.push(["fulcrum stdout", f.channel.stdoutText()], ["fulcrum stderr", f.channel.stderrText()]);
    assert.ok(
      f.lines.some((l) => l.level === "debug"),
      "debug lines were printed",
    );

    const good = join(dir, "secrets-good.yaml");
    const bad = join(dir, "secrets-bad.yaml");
    writeFileSync(good, config(token));
    writeFileSync(bad, broken);
    const checkGood = await runFulcrum(["check", "--config", good]);
    assert.equal(checkGood.code, 0, checkGood.stderr);
    const resolved = JSON.parse(checkGood.stdout) as {
      admin: { token: string };
      listeners: { tls?: { key: string } }[];
    };
    assert.equal(resolved.admin.token, "<redacted>", "the token is shown redacted, not dropped");
    assert.equal(resolved.listeners[1]?.tls?.key, "<redacted>");
    const checkBad = await runFulcrum(["check", "--config", bad]);
    assert.equal(checkBad.code, 1);
    const runBad = await runFulcrum(["run", "--config", bad, "--log-level", "debug"]);
    assert.equal(runBad.code, 1);
    for (const [what, r] of [
      ["check (valid)", checkGood],
      ["check (invalid)", checkBad],
      ["run (invalid)", runBad],
    ] as const)
      texts.push([`${what} stdout`, r.stdout], [`${what} stderr`, r.stderr]);

    const found = texts.flatMap(([what, text]) => leaked(text, secrets).map((s) => `${what}: ${s}`));
    assert.deepEqual(found, []);
    assert.ok(texts.length >= 20, `${texts.length} texts searched`);
  });

  // Regression: a token YAML reads as a number (unquoted digits) was rejected with a message that
  // echoed it. The value given for admin.token is the secret, whatever its type.
  it("config: an unquoted numeric admin.token is rejected without echoing it", async () => {
    const secret = "867530912345";
    const file = join(dir, "numeric-token.yaml");
    writeFileSync(file, `admin: { listen: "127.0.0.1:0", token: ${secret} }\n${tcpBlock()}`);
    const r = await runFulcrum(["check", "--config", file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^admin\.token: /m);
    assert.ok(!r.stderr.includes(secret), `the token is echoed: ${r.stderr.trim()}`);
  });

  // Regression: an unreadable TLS file ended `run` with a stack trace; when the key was pasted inline
  // into the YAML (a common mistake), the "path" in that message was the private key itself.
  it("tls files: an unreadable tls.key is a path-named error, with no stack trace and no key", async () => {
    const pem = certs.server.key.toString("utf8");
    const file = join(dir, "inline-key.yaml");
    const indented = pem
      .trimEnd()
      .split("\n")
      .map((l) => `        ${l}`)
      .join("\n");
    writeFileSync(
      file,
      `listeners:
  - name: g
    protocol: grpc
    listen: "127.0.0.1:0"
    cluster: w
    tls:
      cert: "${certs.server.certPath}"
      key: |
${indented}
clusters:
  - { name: w, health_check: { type: none }, endpoints: [{ address: "127.0.0.1:9" }] }
`,
    );
    const r = await runFulcrum(["run", "--config", file]);
    assert.equal(r.code, 1);
    assert.deepEqual(leaked(r.stdout + r.stderr, keyMaterial(certs.server.key)), [], "key material printed");
    assert.ok(!/^\s+at /m.test(r.stderr), `a stack trace:\n${r.stderr.slice(0, 400)}`);
    assert.match(r.stderr, /^listeners\[0\]\.tls\.key: /m);
  });
});
