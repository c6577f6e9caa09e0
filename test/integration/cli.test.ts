/**
 * The CLI contract of docs/architecture.md, driven as an outside tool would: the built `fulcrum` binary as a
 * child process, exit codes, `check` output, the `listening` line, signals, and the demo.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { tritonService } from "../../src/protos/inference-protos.js";
import { runnableExample } from "../helpers/examples.js";
import { makeTestCerts } from "../helpers/grpc-certs.js";
import { connectAndGreet, closeSocket, waitFor } from "../helpers/harness.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CLI = join(ROOT, "dist/src/cli.js");
const EXAMPLES = join(ROOT, "examples");

/** The demo's gRPC workers are Triton-shaped: each names itself in its answer's `worker` parameter. */
interface TritonInferClient extends grpc.Client {
  ModelInfer(
    request: { model_name: string },
    callback: (
      err: grpc.ServiceError | null,
      reply?: { parameters: Record<string, { string_param?: string }> },
    ) => void,
  ): grpc.ClientUnaryCall;
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Starts a long-running CLI and resolves once `count` `listening` lines were printed. */
function startCli(
  args: string[],
  count: number,
): Promise<{ child: ChildProcess; lines: Record<string, unknown>[]; stderr: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const lines: Record<string, unknown>[] = [];
    let buf = "";
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(JSON.parse(line) as Record<string, unknown>);
        if (lines.filter((l) => l.msg === "listening").length === count)
          resolve({ child, lines, stderr: () => err });
      }
    });
    child.once("exit", (code) => reject(new Error(`exited ${code} before listening: ${err}`)));
  });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once("exit", (code) => resolve(code));
  });
}

describe("cli", { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "fulcrum-cli-"));
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  });

  it("--version and --help exit 0; usage errors exit 2", async () => {
    const v = await runCli(["--version"]);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^fulcrum \d+\.\d+\.\d+\n$/);
    const h = await runCli(["--help"]);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /fulcrum check --config FILE/);
    for (const args of [
      ["frobnicate"],
      ["check"],
      ["--bogus"],
      ["run", "--config", "x.yaml", "--log-level", "loud"],
    ]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /^fulcrum: /);
    }
  });

  it("check exits 0 with the resolved config for every example (with its TLS files and a real token)", async () => {
    const files = readdirSync(EXAMPLES).filter((f) => f.endsWith(".yaml"));
    assert.ok(files.length >= 3);
    const certs = makeTestCerts();
    try {
      for (const f of files) {
        const r = await runCli(["check", "--config", runnableExample(f, dir, certs)]);
        assert.equal(r.code, 0, `${f}: ${r.stderr}`);
        const resolved = JSON.parse(r.stdout) as { listeners: unknown[]; drain_timeout: string };
        assert.ok(Array.isArray(resolved.listeners));
        assert.equal(typeof resolved.drain_timeout, "string");
      }
    } finally {
      certs.remove();
    }
  });

  it("check reports five mistakes by path and exits 1", async () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(
      file,
      `drain_timeout: 30
listeners:
  - name: in
    protocol: tcp
    listen: 127.0.0.1:9000
    cluster: nowhere
clusters:
  - name: c
    colour: blue
    endpoints:
      - address: foo
      - address: 127.0.0.1:9102
        weight: 0
`,
    );
    const r = await runCli(["check", "--config", file]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    const lines = r.stderr.trim().split("\n");
    const paths = lines.map((l) => l.slice(0, l.indexOf(": ")));
    for (const p of [
      "drain_timeout",
      "listeners[0].cluster",
      "clusters[0].colour",
      "clusters[0].endpoints[0].address",
      "clusters[0].endpoints[1].weight",
    ]) {
      assert.ok(paths.includes(p), `missing ${p} in:\n${r.stderr}`);
    }
    assert.equal(lines.length, 5, r.stderr);
  });

  it("run prints the listening line with the bound port, serves, and exits 0 on SIGTERM", async () => {
    const worker = createServer((s) => s.end("hi\n"));
    await new Promise<void>((r) => worker.listen(0, "127.0.0.1", r));
    const wport = (worker.address() as { port: number }).port;
    const file = join(dir, "run.yaml");
    writeFileSync(
      file,
      `listeners:
  - { name: front, protocol: tcp, listen: "127.0.0.1:0", cluster: c }
clusters:
  - name: c
    endpoints: [{ address: "127.0.0.1:${wport}" }]
`,
    );
    const { child, lines } = await startCli(["--config", file], 1);
    children.push(child);
    const listening = lines.find((l) => l.msg === "listening");
    assert.equal(listening?.listener, "front");
    const port = Number(/:(\d+)$/.exec(String(listening?.address))?.[1]);
    assert.ok(port > 0);
    const { socket, worker: reply } = await connectAndGreet(port);
    assert.equal(reply, "hi");
    await closeSocket(socket);
    child.kill("SIGTERM");
    assert.equal(await exitOf(child), 0);
    await new Promise((r) => worker.close(r));
  });

  it("a port that cannot be bound exits 1", async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const port = (blocker.address() as { port: number }).port;
    const file = join(dir, "taken.yaml");
    writeFileSync(
      file,
      `listeners:
  - { name: front, protocol: tcp, listen: "127.0.0.1:${port}", cluster: c }
clusters:
  - { name: c, endpoints: [{ address: "127.0.0.1:1" }] }
`,
    );
    const r = await runCli(["--config", file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /listeners\[0\]\.listen: cannot bind .*EADDRINUSE/);
    await new Promise((res) => blocker.close(res));
  });

  it("demo starts simulated workers behind a balancer and says where to connect", async () => {
    const { child, lines, stderr } = await startCli(
      [
        "demo",
        "--listen",
        "127.0.0.1:0",
        "--grpc-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--no-traffic",
      ],
      3,
    );
    children.push(child);
    const listening = lines.find((l) => l.msg === "listening" && l.listener === "demo-tcp");
    const grpcListening = lines.find((l) => l.msg === "listening" && l.listener === "demo-grpc");
    const grpcClient = new (tritonService())(
      String(grpcListening?.address),
      grpc.credentials.createInsecure(),
    ) as unknown as TritonInferClient;
    const grpcNames = new Set<string>();
    for (let i = 0; i < 6; i++) {
      grpcNames.add(
        await new Promise<string>((resolve, reject) =>
          grpcClient.ModelInfer({ model_name: "simple" }, (err, reply) =>
            err ? reject(err) : resolve(String(reply?.parameters.worker?.string_param)),
          ),
        ),
      );
    }
    grpcClient.close();
    assert.equal(grpcNames.size, 3, "one client connection reaches all three gRPC workers");
    const address = String(listening?.address);
    await waitFor(() => stderr().includes("demo is running"), 5000, "the demo banner");
    assert.ok(stderr().includes(address), "the banner names the listener's address");
    const port = Number(/:(\d+)$/.exec(address)?.[1]);
    const names = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const { socket, worker } = await connectAndGreet(port);
      names.add(worker);
      await closeSocket(socket);
    }
    assert.deepEqual([...names].sort(), ["gpu-0", "gpu-1", "gpu-2"]);
    child.kill("SIGINT");
    assert.equal(await exitOf(child), 0);
  });
});
