/**
 * Access-log sampling with an injected random source, and the line of a stream: exact, no network.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { seededRandom } from "../../src/balancer/random-seeded.js";
import { parseConfig } from "../../src/config/config-load.js";
import { AccessLog, AccessLogSink } from "../../src/access-log/access-log.js";

function listener(accessLog: string): ReturnType<typeof parseConfig>["listeners"][number] {
  const config = parseConfig(
    `listeners:
  - { name: g, protocol: grpc, listen: "127.0.0.1:0", cluster: c, access_log: ${accessLog} }
clusters:
  - { name: c, endpoints: [{ address: "127.0.0.1:1" }] }
`,
    { baseDir: process.cwd() },
  );
  return config.listeners[0] as ReturnType<typeof parseConfig>["listeners"][number];
}

function taken(accessLog: string, n: number, random: () => number): number {
  const log = new AccessLog(listener(accessLog), new AccessLogSink({ write: () => undefined }), random);
  let count = 0;
  for (let i = 0; i < n; i++) if (log.take()) count++;
  return count;
}

describe("access log sampling", { timeout: 10_000 }, () => {
  it("off by default, none at sample 0, all at 1, the drawn fraction in between", () => {
    const never = (): number => 0;
    assert.equal(taken("{}", 100, never), 0);
    assert.equal(taken("{ enabled: true, sample: 0 }", 100, never), 0);
    assert.equal(
      taken("{ enabled: true }", 100, () => 0.999),
      100,
    );
    // Draws below the sample are taken: 0.0, 0.1, … 0.9 against 0.5 → 5 of every 10.
    let i = 0;
    assert.equal(
      taken("{ enabled: true, sample: 0.5 }", 200, () => (i++ % 10) / 10),
      100,
    );
    const n = taken("{ enabled: true, sample: 0.5 }", 10_000, seededRandom(7));
    assert.ok(Math.abs(n - 5000) < 300, String(n));
  });

  it("a stream's line is one JSON object with the fields given, ending with a newline", () => {
    const lines: string[] = [];
    const log = new AccessLog(
      listener("{ enabled: true }"),
      new AccessLogSink({ write: (l) => lines.push(l) }),
    );
    log.stream("c", {
      status: 14,
      bytesIn: 5,
      bytesOut: 0,
      seconds: 0.0012345,
      client: "::1",
      method: '/a"b/C',
      endpoint: undefined,
      retries: 2,
      route: undefined,
    });
    assert.equal(lines.length, 1);
    assert.ok(lines[0]?.endsWith("}\n"));
    const { time: _time, pid: _pid, ...rest } = JSON.parse(lines[0] ?? "") as Record<string, unknown>;
    assert.deepEqual(rest, {
      level: "info",
      msg: "access",
      listener: "g",
      protocol: "grpc",
      client: "::1",
      method: '/a"b/C',
      cluster: "c",
      grpc_status: 14,
      grpc_code: "UNAVAILABLE",
      duration_ms: 1.235,
      bytes_in: 5,
      bytes_out: 0,
      retries: 2,
    });
  });

  it("a client-chosen method longer than 256 characters is cut, so a line stays one pipe write", () => {
    const lines: string[] = [];
    const log = new AccessLog(
      listener("{ enabled: true }"),
      new AccessLogSink({ write: (l) => lines.push(l) }),
    );
    const method = `/${"x".repeat(16_000)}`;
    const outcome = { status: 0, bytesIn: 0, bytesOut: 0, seconds: 0, client: "::1", retries: 0 };
    log.stream("c", { ...outcome, method, endpoint: undefined, route: undefined });
    const line = JSON.parse(lines[0] ?? "") as { method: string };
    assert.equal(line.method, `${method.slice(0, 256)}...`);
    assert.ok(Buffer.byteLength(lines[0] ?? "") < 1024, `${Buffer.byteLength(lines[0] ?? "")} bytes`);
  });
});
