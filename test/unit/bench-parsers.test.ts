/**
 * The bench's pure parts: parsers of the C load generators' output, the gRPC message counter, the
 * statistics, the stability rule of the measurement windows, the CPU profile summariser, and the
 * configs generated for Fulcrum (validated by Fulcrum's own loader) and the peers.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MessageCounter } from "../../bench/loadgen/loadgen-client.js";
import { LatencyHistogram } from "../../bench/loadgen/loadgen-histogram.js";
import { stableWhen } from "../../bench/loadgen/loadgen-windows.js";
import { parseDuration } from "../../bench/loadgen/loadgen-cli.js";
import { summariseProfile } from "../../bench/report/report-cpu-profile.js";
import { overheadMarkdown } from "../../bench/report/report-overhead.js";
import { launchOrder, type OverheadMeasurement } from "../../bench/scenarios/scenario-overhead.js";
import { iperf3ServerBetweenTests } from "../../bench/tools/tool-iperf3.js";
import { fmtSpread, num, spread } from "../../bench/report/report-stats.js";
import { fulcrumConfig } from "../../bench/targets/target-fulcrum.js";
import { haproxyBalance } from "../../bench/targets/target-haproxy.js";
import { TARGETS } from "../../bench/targets/target.js";
import { grpcFrame, parseH2load } from "../../bench/tools/tool-h2load.js";
import { parseWrk } from "../../bench/tools/tool-wrk.js";
import { parseConfig } from "../../src/config/config-load.js";

const WRK = `Running 5s test @ http://127.0.0.1:40001/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   512.00us  200.10us   9.87ms   90.00%
  Latency Distribution
     50%  450.00us
     75%  600.00us
     90%  800.00us
     99%    1.50ms
  175000 requests in 5.00s, 20.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  35000.00
`;

const H2LOAD = `finished in 3.01s, 13824.00 req/s, 1.85MB/s
requests: 41472 total, 41600 started, 41472 done, 41470 succeeded, 2 failed, 0 errored, 0 timeout
status codes: 41504 2xx, 0 3xx, 0 4xx, 0 5xx
`;

describe("bench parsers and helpers", { timeout: 120_000 }, () => {
  it("parses wrk: requests, duration, p50/p99 in ms, every kind of error", () => {
    const r = parseWrk(WRK);
    assert.equal(r.requests, 175000);
    assert.equal(r.seconds, 5);
    assert.equal(r.p50Ms, 0.45);
    assert.equal(r.p99Ms, 1.5);
    assert.equal(r.errors, 7);
  });

  it("parses h2load: succeeded requests, duration, failures as errors", () => {
    const r = parseH2load(H2LOAD);
    assert.deepEqual(r, { requests: 41470, bytes: 0, seconds: 3.01, errors: 2 });
  });

  it("frames a gRPC message and counts messages split at any byte", () => {
    const frame = grpcFrame(100);
    assert.equal(frame.length, 105);
    assert.equal(frame.readUInt32BE(1), 100);
    const stream = Buffer.concat([frame, grpcFrame(0), frame, grpcFrame(3)]);
    for (const cut of [1, 3, 5, 7, 104, 106, 200]) {
      const c = new MessageCounter();
      c.push(stream.subarray(0, cut));
      c.push(stream.subarray(cut));
      assert.equal(c.messages, 4, `cut at ${cut}`);
    }
  });

  it("keeps latency in an HDR histogram with 3 significant digits", () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) h.recordMs(i / 10);
    assert.equal(h.count, 1000);
    assert.ok(Math.abs(h.percentileMs(50) - 50) < 0.1);
    assert.ok(Math.abs(h.percentileMs(99) - 99) < 0.1);
    assert.ok(Math.abs(h.summary().maxMs - 100) < 0.1);
  });

  it("reports medians with min–max over repetitions", () => {
    assert.deepEqual(spread([3, 1, 2]), { median: 2, min: 1, max: 3, n: 3 });
    assert.equal(spread([1, 2, 3, 4])?.median, 2.5);
    assert.equal(spread([]), undefined);
    assert.equal(fmtSpread(spread([1.5, 1, 2])), "1.50 (1.00–2.00)");
    assert.equal(num(41234.4), "41,234");
    assert.equal(num(0.07312), "0.0731");
  });

  it("stops measuring once the last windows agree within the tolerance", () => {
    const win = (ok: number, p99: number) => {
      const histogram = new LatencyHistogram();
      for (let i = 0; i < 100; i++) histogram.recordMs(i >= 95 ? p99 : 1);
      return { seconds: 1, requests: ok, ok, errors: 0, histogram, okHistogram: histogram, statuses: {} };
    };
    const rule = stableWhen({ windows: 3, tolerance: 0.1 });
    assert.equal(rule([win(100, 5), win(200, 5)]), undefined);
    assert.equal(rule([win(50, 5), win(100, 5), win(105, 5), win(98, 5)]), 3);
    assert.equal(rule([win(100, 5), win(100, 9), win(100, 5)]), undefined);
  });

  it("parses durations for the load generator", () => {
    assert.equal(parseDuration("500ms", "x"), 500);
    assert.equal(parseDuration("10s", "x"), 10_000);
    assert.equal(parseDuration("2m", "x"), 120_000);
    assert.throws(() => parseDuration("10", "--duration"), /--duration/);
  });

  it("summarises a CPU profile by self time, idle left out", () => {
    const dir = mkdtempSync(join(tmpdir(), "bench-prof-"));
    const file = join(dir, "p.cpuprofile");
    const frame = (functionName: string) => ({ functionName, url: "file:///x/dist/src/a.js", lineNumber: 9 });
    writeFileSync(
      file,
      JSON.stringify({
        nodes: [
          { id: 1, callFrame: frame("(root)") },
          { id: 2, callFrame: frame("hot") },
          { id: 3, callFrame: frame("warm") },
          { id: 4, callFrame: frame("(idle)") },
        ],
        samples: [2, 2, 3, 4, 2],
        timeDeltas: [0, 100, 100, 100, 100],
      }),
    );
    const { entries } = summariseProfile(file);
    assert.deepEqual(
      entries.map((e) => [e.fn, e.where]),
      [
        ["hot", "dist/src/a.js:10"],
        ["warm", "dist/src/a.js:10"],
      ],
    );
    assert.ok((entries[0]?.share ?? 0) > 0.6);
  });

  it("generates a Fulcrum config that Fulcrum's loader accepts", () => {
    const yaml = fulcrumConfig([
      { name: "bulk", protocol: "tcp", upstreams: ["127.0.0.1:5201"] },
      { name: "p2c", protocol: "grpc", upstreams: ["127.0.0.1:9001", "127.0.0.1:9002"], policy: "p2c" },
    ]);
    const config = parseConfig(yaml, { baseDir: process.cwd() });
    assert.equal(config.listeners.length, 2);
    assert.equal(config.clusters[1]?.policy, "p2c");
    assert.equal(config.clusters[1]?.endpoints.length, 2);
  });

  it("the fulcrum target runs the default config (frames); fulcrum-http2 and fulcrum-frames name the engine", () => {
    const grpc = [{ name: "g", protocol: "grpc", upstreams: ["127.0.0.1:9001"] }] as const;
    const engineOf = (yaml: string): string | undefined =>
      parseConfig(yaml, { baseDir: process.cwd() }).listeners[0]?.engine;
    assert.doesNotMatch(fulcrumConfig(grpc), /engine/, "no engine key: Fulcrum's default");
    assert.equal(engineOf(fulcrumConfig(grpc)), "frames");
    assert.equal(engineOf(fulcrumConfig(grpc, "http2")), "http2");
    assert.equal(engineOf(fulcrumConfig(grpc, "frames")), "frames");
    assert.ok(TARGETS.includes("fulcrum-http2") && TARGETS.includes("fulcrum-frames"));
  });

  it("maps policies to HAProxy's balance algorithms and refuses those it lacks", () => {
    assert.equal(haproxyBalance("round_robin"), "roundrobin");
    assert.equal(haproxyBalance("least_connections"), "leastconn");
    assert.throws(() => haproxyBalance("p2c"), /no equivalent/);
  });

  type BuildTarget = "fulcrum" | "fulcrum-baseline";
  /** One measurement of a build, p50 1 ms and p99 2 ms. */
  const measurement = (
    row: string,
    target: BuildTarget,
    launch: number,
    rep: number,
    throughput: number,
    cpu: number,
  ): OverheadMeasurement => ({
    row,
    target,
    launch,
    rep,
    throughput,
    p50Ms: 1,
    p99Ms: 2,
    cpu,
    errors: 0,
    problems: [],
  });

  it("compares the build under test with --baseline as the median of per-repetition ratios", () => {
    const m = (target: BuildTarget, rep: number, throughput: number, cpu: number): OverheadMeasurement =>
      measurement("grpc-unary-1x1", target, 0, rep, throughput, cpu);
    const md = overheadMarkdown([
      m("fulcrum", 0, 110, 10),
      m("fulcrum-baseline", 0, 100, 10),
      m("fulcrum", 1, 90, 12),
      m("fulcrum-baseline", 1, 100, 10),
      m("fulcrum", 2, 200, 9),
      m("fulcrum-baseline", 2, 200, 10),
    ]);
    // Throughput ratios 1.1, 0.9, 1.0 → median 1.00; CPU ratios 1.0, 1.2, 0.9 → median 1.00.
    assert.match(md, /fulcrum \/ fulcrum-baseline/);
    assert.match(
      md,
      /\| grpc-unary-1x1 \| 1\.00 \(0\.900–1\.10\) \| 1\.00 \(1\.00–1\.00\) \| 1\.00 \(1\.00–1\.00\) \| 1\.00 \(0\.900–1\.20\) \|/,
    );
  });

  it("an iperf3 client refused, reset or told busy while the server is between tests runs again; other errors do not", () => {
    assert.ok(iperf3ServerBetweenTests("unable to connect to server: Connection refused"));
    assert.ok(iperf3ServerBetweenTests("unable to receive control message: Connection reset by peer"));
    assert.ok(iperf3ServerBetweenTests("the server is busy running a test. try again later"));
    assert.ok(!iperf3ServerBetweenTests("parameter error - must either be a client (-c) or server (-s)"));
  });

  it("with --launches, each launch starts the targets in a turned order", () => {
    const targets = ["fulcrum", "fulcrum-baseline"] as const;
    assert.deepEqual(launchOrder(targets, 0), ["fulcrum", "fulcrum-baseline"]);
    assert.deepEqual(launchOrder(targets, 1), ["fulcrum-baseline", "fulcrum"]);
    assert.deepEqual(launchOrder(["direct", "fulcrum", "haproxy"], 2), ["haproxy", "direct", "fulcrum"]);
  });

  it("with --launches, one ratio per launch (the median of its pairs) and their mean", () => {
    const m = (target: BuildTarget, launch: number, rep: number, cpu: number): OverheadMeasurement =>
      measurement("grpc-unary-8x16", target, launch, rep, 100, cpu);
    const md = overheadMarkdown([
      // Launch 0: CPU ratios 1.2, 1.1, 1.3 → 1.2. Launch 1: 0.9, 1.0, 0.8 → 0.9. Mean 1.05.
      ...[12, 11, 13].flatMap((cpu, rep) => [m("fulcrum", 0, rep, cpu), m("fulcrum-baseline", 0, rep, 10)]),
      ...[9, 10, 8].flatMap((cpu, rep) => [m("fulcrum", 1, rep, cpu), m("fulcrum-baseline", 1, rep, 10)]),
    ]);
    assert.match(md, /per launch \(2 launches/);
    assert.match(md, /\| grpc-unary-8x16 \| 1\.00 \(1\.00, 1\.00\) \| 1\.05 \(1\.20, 0\.900\) \|/);
    // Pairs are made within a launch: repetition 0 of launch 1 is not paired with launch 0's.
    assert.match(
      md,
      /\| grpc-unary-8x16 \| 1\.00 \(1\.00–1\.00\) \| 1\.00 \(1\.00–1\.00\) \| 1\.00 \(1\.00–1\.00\) \| 1\.05 \(0\.800–1\.30\) \|/,
    );
  });
});
