/**
 * Bad input on a TCP listener, with Fulcrum as a child process observed through /proc: an L4 proxy
 * cannot judge bytes, so it must forward any byte stream unchanged, keep its memory flat when a client
 * stops reading (backpressure), close a silent connection by idle_timeout, keep forwarding a trickle
 * (it is not idle), and bound all of them by max_connections. After each case Fulcrum's file
 * descriptors are back to their baseline.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import fc from "fast-check";
import { fdsSettle, startFulcrumProcess, until, type FulcrumProcess } from "./helpers/fulcrum-process.js";
import { LOOKALIKES, roundTrip, streamCase, type StreamCase } from "./helpers/byte-streams.js";
import {
  closeServer,
  closed,
  connectTo,
  echoByte,
  listen,
  recordingEchoWorker,
  refusedConnection,
  sourceWorker,
} from "./helpers/tcp-peers.js";

/** The seed of the random byte streams: fixed, so a run is repeatable; change it to explore. */
const SEED = 20_260_510;
const MIB = 1024 * 1024;
const IDLE_TIMEOUT_MS = 1000;
const IDLE_MAX_CONNECTIONS = 3;
const CAPPED_MAX_CONNECTIONS = 8;
const SOURCE_BYTES = 256 * MIB;
/** Clients that write and reset, in the regression test of the reset-after-FIN leak. */
const RESETS = 200;
const RSS_BUDGET_KIB = 16 * 1024;
/** The 64 KiB block the source worker repeats, so the reader can check every byte it gets. */
const PATTERN = randomBytes(64 * 1024);

/**
 * Counterexamples of past failures (paste fast-check's reported counterexample here) and inputs
 * picked by hand; fast-check runs every one before the random cases.
 */
const REGRESSIONS: readonly StreamCase[] = [
  { chunks: [], gaps: [], ending: "half_close" },
  { chunks: [Buffer.alloc(1, 0)], gaps: [0], ending: "half_close" },
  { chunks: [...LOOKALIKES], gaps: LOOKALIKES.map(() => 0), ending: "close_after_echo" },
  { chunks: [randomBytes(2 * MIB)], gaps: [0], ending: "half_close" },
  { chunks: [Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")], gaps: [0], ending: "reset" },
  // Seed 20260510, path "45": the endpoint's active count stayed at 1 after both ends closed (the
  // reset-after-FIN leak, see its own test below; racy, so this case alone does not always catch it).
  {
    chunks: [
      Buffer.from([22, 3, 1, 2, 0, 1]),
      Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
      Uint8Array.from([179, 68, 86, 55, 112, 48, 51, 35, 173]),
      Uint8Array.from([109, 198, 254, 17, 237, 99, 130, 20, 166, 3, 84, 94]),
      Uint8Array.from([141, 163]),
    ],
    gaps: [0, 0, 0, 0, 0],
    ending: "reset",
  },
];

describe("tcp bad input (fulcrum as a child process)", { timeout: 300_000 }, () => {
  let f: FulcrumProcess;
  const recorder = recordingEchoWorker();
  const echo = recordingEchoWorker();
  const source = sourceWorker(SOURCE_BYTES, PATTERN);
  /**
   * Fulcrum's fds when the case starts. Each case compares with its own start, so a case that leaks
   * fails itself and does not drag the later cases down with it.
   */
  let fdBaseline = 0;
  beforeEach(() => {
    fdBaseline = f.openFiles();
  });

  before(async () => {
    const [recorderPort, echoPort, sourcePort] = await Promise.all(
      [recorder.server, echo.server, source.server].map(listen),
    );
    f = await startFulcrumProcess({
      listening: 5,
      yaml: `
admin: { listen: "127.0.0.1:0" }
drain_timeout: 2s
listeners:
  - { name: data, protocol: tcp, listen: "127.0.0.1:0", cluster: recorder, idle_timeout: 30s }
  - { name: source, protocol: tcp, listen: "127.0.0.1:0", cluster: source, idle_timeout: 60s }
  - name: idle
    protocol: tcp
    listen: "127.0.0.1:0"
    cluster: echo
    idle_timeout: ${IDLE_TIMEOUT_MS}ms
    max_connections: ${IDLE_MAX_CONNECTIONS}
  - { name: capped, protocol: tcp, listen: "127.0.0.1:0", cluster: echo, max_connections: ${CAPPED_MAX_CONNECTIONS} }
clusters:
  - { name: recorder, health_check: { type: none }, endpoints: [{ address: "127.0.0.1:${recorderPort}" }] }
  - { name: source, health_check: { type: none }, endpoints: [{ address: "127.0.0.1:${sourcePort}" }] }
  - { name: echo, health_check: { type: none }, endpoints: [{ address: "127.0.0.1:${echoPort}" }] }
`,
    });
    // One connection through before the baseline: the first one opens what stays open afterwards.
    const warm = await connectTo(f.target("data").port);
    assert.equal(await echoByte(warm, 7), 7);
    warm.destroy();
    await until(() => recorder.received.length === 1, 5000, "the warm-up connection to close");
    await new Promise((r) => setTimeout(r, 300));
  });

  after(async () => {
    await f?.stop();
    for (const s of [recorder.server, echo.server, source.server]) await closeServer(s);
  });

  it("random byte streams arrive unchanged at the worker and back (fast-check, fixed seed)", async () => {
    const port = f.target("data").port;
    const activeCounts = async (): Promise<{ listener?: number; endpoint?: number }> => {
      const st = await f.status();
      return {
        listener: st.listeners.find((x) => x.name === "data")?.active,
        endpoint: st.clusters.find((x) => x.name === "recorder")?.endpoints[0]?.active,
      };
    };
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(streamCase, async (c) => {
        runs++;
        // Compared with before the case rather than with 0: a leak is pinned on the case that leaked.
        const before = await activeCounts();
        await roundTrip(port, recorder.received, c);
        // Both ends closed: Fulcrum must hold nothing for this connection any more.
        let now = before;
        try {
          await until(
            async () => {
              now = await activeCounts();
              return now.endpoint === before.endpoint && now.listener === before.listener;
            },
            3000,
            "active counts",
          );
        } catch {
          assert.fail(
            `active counts after both ends closed: ${JSON.stringify(now)}, before: ${JSON.stringify(before)}`,
          );
        }
      }),
      // No shrinking: a failure here is often a race, which shrinking retries slowly and then blames
      // on some smaller case; the failing case itself, its seed and path are what get reported.
      {
        seed: SEED,
        numRuns: 120,
        examples: REGRESSIONS.map((c) => [c]),
        endOnFailure: true,
        interruptAfterTimeLimit: 90_000,
        markInterruptAsFailure: true,
      },
    );
    assert.equal(runs, 120, "every case ran");
    await fdsSettle(f, fdBaseline);
  });

  // Regression (found by the random streams above, seed 20260510): when the client's FIN had already
  // been passed upstream and a write to the client then failed with ECONNRESET, the splice reset the
  // upstream socket; libuv refuses to reset a socket whose shutdown is under way (EINVAL, "reset"), so
  // Node never closed it: the endpoint's active count stayed +1 for good and the fd leaked. Racy:
  // about 1 in 7 such connections, hence 200 of them.
  it(`${RESETS} clients that write and reset are all released (the reset-after-FIN leak)`, async () => {
    const port = f.target("data").port;
    const activeOf = async (): Promise<{ listener?: number; endpoint?: number }> => {
      const st = await f.status();
      return {
        listener: st.listeners.find((x) => x.name === "data")?.active,
        endpoint: st.clusters.find((x) => x.name === "recorder")?.endpoints[0]?.active,
      };
    };
    const before = await activeOf();
    const seen = recorder.received.length;
    for (let i = 0; i < RESETS; i++) {
      const socket = await connectTo(port);
      socket.on("error", () => {});
      // The shape of the first counterexample fast-check found: a few small writes, then a reset.
      for (const chunk of [LOOKALIKES[3], LOOKALIKES[0], randomBytes(9), randomBytes(12), randomBytes(2)])
        socket.write(chunk as Uint8Array);
      socket.resetAndDestroy();
      await closed(socket);
      await new Promise((r) => setTimeout(r, 20));
    }
    await until(
      () => recorder.received.length >= seen + 100,
      10_000,
      "the worker's 100 connections to close",
    );
    let now = before;
    await until(
      async () => {
        now = await activeOf();
        return now.endpoint === before.endpoint && now.listener === before.listener;
      },
      5000,
      "active counts",
    ).catch(() =>
      assert.fail(`active counts ${JSON.stringify(now)}, before the resets ${JSON.stringify(before)}`),
    );
    await fdsSettle(f, fdBaseline);
  });

  it(`a client that never reads while the worker sends 256 MiB: RSS stays within +16 MiB`, async () => {
    const port = f.target("source").port;
    // Warm the path at full speed first, so the baseline already holds what a transfer needs.
    const warm = await connectTo(port);
    let warmBytes = 0;
    warm.on("data", (d: Buffer) => {
      warmBytes += d.length;
      if (warmBytes >= 16 * MIB) warm.destroy();
    });
    await closed(warm);
    await new Promise((r) => setTimeout(r, 500));
    const baseline = f.memory().rssKiB;
    const peakReset = f.resetPeak();

    const client = await connectTo(port);
    client.pause(); // never reads: only the kernel's buffers take bytes now
    let maxRss = baseline;
    const sampler = setInterval(() => (maxRss = Math.max(maxRss, f.memory().rssKiB)), 50);
    try {
      // Stalled: the worker's kernel stopped taking bytes for 1.5 s.
      let last = -1;
      let stillSince = Date.now();
      await until(
        () => {
          if (source.progress.accepted !== last) {
            last = source.progress.accepted;
            stillSince = Date.now();
          }
          return Date.now() - stillSince >= 1500;
        },
        60_000,
        "the worker to stall",
        100,
      );
      await new Promise((r) => setTimeout(r, 2000)); // and it stays stalled
      const stalledAt = source.progress.accepted;
      const stalledRss = Math.max(maxRss, peakReset ? f.memory().hwmKiB : 0);
      console.log(
        `reliability-figure ${JSON.stringify({
          figure: "tcp_backpressure_stalled",
          worker_sent_mib: +(stalledAt / MIB).toFixed(1),
          rss_baseline_mib: +(baseline / 1024).toFixed(1),
          rss_growth_kib: stalledRss - baseline,
        })}`,
      );
      assert.ok(stalledAt < SOURCE_BYTES / 2, `backpressure reached the worker (it sent ${stalledAt} bytes)`);
      assert.ok(
        stalledRss - baseline <= RSS_BUDGET_KIB,
        `RSS grew ${stalledRss - baseline} KiB while the client did not read (budget ${RSS_BUDGET_KIB})`,
      );

      // Now read everything: nothing was lost or changed while it waited.
      let offset = 0;
      let mismatch = -1;
      client.on("data", (d: Buffer) => {
        for (let i = 0; i < d.length && mismatch < 0;) {
          const at = offset % PATTERN.length;
          const n = Math.min(d.length - i, PATTERN.length - at);
          if (!d.subarray(i, i + n).equals(PATTERN.subarray(at, at + n))) mismatch = offset;
          i += n;
          offset += n;
        }
      });
      client.resume();
      await closed(client);
      assert.equal(mismatch, -1, `bytes differ at offset ${mismatch}`);
      assert.equal(offset, SOURCE_BYTES, "all 256 MiB arrived once the client read");
      const peak = Math.max(maxRss, peakReset ? f.memory().hwmKiB : 0);
      console.log(
        `reliability-figure ${JSON.stringify({ figure: "tcp_backpressure_drained", rss_peak_growth_kib: peak - baseline })}`,
      );
    } finally {
      clearInterval(sampler);
      client.destroy();
    }
    await fdsSettle(f, fdBaseline);
  });

  it(`a silent client is closed by idle_timeout (${IDLE_TIMEOUT_MS} ms), at both ends`, async () => {
    const seen = echo.received.length;
    const socket = await connectTo(f.target("idle").port);
    const opened = Date.now();
    let bytes = 0;
    socket.on("data", (d: Buffer) => (bytes += d.length));
    await closed(socket);
    const lived = Date.now() - opened;
    assert.ok(lived >= IDLE_TIMEOUT_MS - 100, `closed after ${lived} ms, before idle_timeout`);
    assert.ok(lived <= IDLE_TIMEOUT_MS + 2500, `closed after ${lived} ms, long after idle_timeout`);
    assert.equal(bytes, 0);
    await until(() => echo.received.length > seen, 5000, "the worker side to close too");
    assert.equal(await f.metric("fulcrum_downstream_connections_active", { listener: "idle" }), 0);
    await fdsSettle(f, fdBaseline);
  });

  it("a trickling client (1 byte / 100 ms) is forwarded past idle_timeout; max_connections bounds it", async () => {
    const port = f.target("idle").port;
    const refusedBefore = await f.metric("fulcrum_downstream_connections_refused_total", {
      listener: "idle",
      reason: "max_connections",
    });
    const BYTES = Math.ceil((3 * IDLE_TIMEOUT_MS) / 100); // three idle_timeouts' worth of trickle
    const tricklers = await Promise.all(Array.from({ length: IDLE_MAX_CONNECTIONS }, () => connectTo(port)));
    const trickle = tricklers.map(async (socket, k) => {
      const back: number[] = [];
      socket.on("data", (d: Buffer) => back.push(...d));
      for (let i = 0; i < BYTES; i++) {
        assert.ok(!socket.closed, `trickler ${k} closed after ${i} bytes`);
        socket.write(Buffer.of((i + k) & 255));
        await new Promise((r) => setTimeout(r, 100));
      }
      await until(() => back.length >= BYTES || socket.closed, 5000, "the last echoes");
      assert.ok(!socket.closed, `trickler ${k} is still open after ${BYTES * 100} ms of trickle`);
      assert.deepEqual(
        back,
        Array.from({ length: BYTES }, (_, i) => (i + k) & 255),
        `trickler ${k}: every byte back, in order`,
      );
    });
    // Past one idle_timeout, with the tricklers holding every slot: the next connection is refused.
    await new Promise((r) => setTimeout(r, IDLE_TIMEOUT_MS + 500));
    const refused = await refusedConnection(port);
    assert.ok(
      refused.end !== "still_open" && refused.ms < 2000,
      `refused at once: ${JSON.stringify(refused)}`,
    );
    assert.equal(refused.bytes, 0);
    await Promise.all(trickle);
    const refusedAfter = await f.metric("fulcrum_downstream_connections_refused_total", {
      listener: "idle",
      reason: "max_connections",
    });
    assert.equal(refusedAfter - refusedBefore, 1, "the refusal is counted once");
    await Promise.all(tricklers.map((s) => (s.destroy(), closed(s))));
    await until(
      async () => (await f.metric("fulcrum_downstream_connections_active", { listener: "idle" })) === 0,
      5000,
      "the tricklers to be gone",
    );
    // The limit is on open connections, not a total: a slot is free again.
    const again = await connectTo(port);
    assert.equal(await echoByte(again, 42), 42);
    again.destroy();
    await closed(again);
    await fdsSettle(f, fdBaseline);
  });

  it(`max_connections (${CAPPED_MAX_CONNECTIONS}) refuses beyond its limit cleanly and counts it`, async () => {
    const port = f.target("capped").port;
    const labels = { listener: "capped", reason: "max_connections" };
    const refusedBefore = await f.metric("fulcrum_downstream_connections_refused_total", labels);
    const held: Socket[] = [];
    for (let i = 0; i < CAPPED_MAX_CONNECTIONS; i++) {
      const s = await connectTo(port);
      assert.equal(await echoByte(s, i), i, `connection ${i} is served`);
      held.push(s);
    }
    const EXTRA = 20;
    const outcomes = await Promise.all(Array.from({ length: EXTRA }, () => refusedConnection(port)));
    for (const o of outcomes) {
      assert.ok(o.end === "fin" || o.end === "ECONNRESET", `closed, not kept: ${JSON.stringify(o)}`);
      assert.equal(o.bytes, 0, "a refused connection gets no byte");
      assert.ok(o.ms < 2000, `closed at once (${o.ms} ms)`);
    }
    assert.equal(
      (await f.metric("fulcrum_downstream_connections_refused_total", labels)) - refusedBefore,
      EXTRA,
      "every refusal counted",
    );
    for (const [i, s] of held.entries())
      assert.equal(await echoByte(s, 100 + i), 100 + i, "held ones unaffected");
    // Free three slots: three new connections are served, the one after them is refused again.
    for (const s of held.splice(0, 3)) {
      s.destroy();
      await closed(s);
    }
    await until(
      async () =>
        (await f.metric("fulcrum_downstream_connections_active", { listener: "capped" })) ===
        CAPPED_MAX_CONNECTIONS - 3,
      5000,
      "three slots to free",
    );
    for (let i = 0; i < 3; i++) {
      const s = await connectTo(port);
      assert.equal(await echoByte(s, 200 + i), 200 + i);
      held.push(s);
    }
    const oneMore = await refusedConnection(port);
    assert.equal(oneMore.bytes, 0);
    assert.notEqual(oneMore.end, "still_open");
    assert.equal(
      (await f.metric("fulcrum_downstream_connections_refused_total", labels)) - refusedBefore,
      EXTRA + 1,
    );
    await Promise.all(held.map((s) => (s.destroy(), closed(s))));
    await fdsSettle(f, fdBaseline);
  });
});
