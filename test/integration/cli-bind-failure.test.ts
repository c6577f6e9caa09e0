/**
 * A start-up that cannot bind a socket, driven through the built CLI as an outside tool runs it: exit
 * 1, one path-named line on stderr, no stack trace anywhere, and no `listening` line for any
 * listener (a tool waiting for those lines must never see a start that then fails).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { NODE_FLAGS } from "../../src/runtime/node-flags.js";
import { CLI } from "../helpers/cli-process.js";
import { grpcEngine } from "../helpers/grpc-client.js";

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The nobody user: a root test process runs the CLI as it to meet EACCES on a privileged port. */
const NOBODY = 65534;

function runCli(args: string[], asNobody = false): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...NODE_FLAGS, CLI, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      ...(asNobody ? { uid: NOBODY, gid: NOBODY } : {}),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function blocker(): Promise<{ server: Server; address: string }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, address: `127.0.0.1:${(server.address() as { port: number }).port}` };
}

/** Every way a failed start could still look like a start, or show a stack trace. */
function assertCleanFailure(r: Result, expected: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  const errLines = r.stderr.trimEnd().split("\n");
  assert.equal(errLines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(errLines[0] ?? "", expected);
  for (const out of [r.stdout, r.stderr]) {
    assert.doesNotMatch(out, /\n\s+at |\\n\s+at |"stack"/, "no stack trace");
  }
  const lines = r.stdout
    .trim()
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    lines.filter((l) => l.msg === "listening"),
    [],
    "nothing logs listening when the start fails",
  );
}

describe("cli: a socket that cannot be bound", { timeout: 90_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "fulcrum-bind-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const engine = grpcEngine();

  const configWith = (threads: number, second: string, admin?: string): string => {
    const file = join(dir, `c-${threads}-${second.replace(/\W/g, "_")}-${admin ?? ""}.yaml`);
    writeFileSync(
      file,
      `threads: ${threads}
${admin !== undefined ? `admin: { listen: "${admin}" }\n` : ""}listeners:
  - { name: g, protocol: grpc, engine: ${engine}, listen: "127.0.0.1:0", cluster: c }
  - { name: t, protocol: tcp, listen: "${second}", cluster: c }
clusters:
  - { name: c, endpoints: [{ address: "127.0.0.1:1" }] }
`,
    );
    return file;
  };

  for (const threads of [1, 2]) {
    it(`listeners[1] in use (threads: ${threads}): one line naming it, exit 1`, async () => {
      const taken = await blocker();
      try {
        const r = await runCli(["--config", configWith(threads, taken.address)]);
        const at = taken.address.replace(/\./g, "\\.");
        assertCleanFailure(
          r,
          new RegExp(
            `^listeners\\[1\\]\\.listen: cannot bind ${at} \\(listener "t"\\): .*in use \\(EADDRINUSE\\)$`,
          ),
        );
      } finally {
        await new Promise((res) => taken.server.close(res));
      }
    });

    it(`admin.listen in use (threads: ${threads}): one line naming it, no listener says listening`, async () => {
      const taken = await blocker();
      try {
        const r = await runCli(["--config", configWith(threads, "127.0.0.1:0", taken.address)]);
        const at = taken.address.replace(/\./g, "\\.");
        assertCleanFailure(r, new RegExp(`^admin\\.listen: cannot bind ${at}: .*in use \\(EADDRINUSE\\)$`));
      } finally {
        await new Promise((res) => taken.server.close(res));
      }
    });
  }

  it("a privileged port without the privilege: EACCES, one line, exit 1", async (t) => {
    const start = Number(readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8").trim());
    if (!(start > 1023)) return t.skip(`unprivileged processes may bind from port ${start}`);
    const asNobody = process.getuid?.() === 0;
    if (asNobody) chmodSync(dir, 0o755);
    const r = await runCli(["--config", configWith(1, "127.0.0.1:1023")], asNobody);
    assertCleanFailure(
      r,
      /^listeners\[1\]\.listen: cannot bind 127\.0\.0\.1:1023 \(listener "t"\): permission denied.*\(EACCES\)$/,
    );
  });
});
