/**
 * A flood of idle TCP connections through Fulcrum: N = min(10,000, ⌊(hard open-files limit − 500) / 2⌋)
 * at once (each costs Fulcrum two file descriptors), with the clients and the worker in processes of
 * their own so that only Fulcrum is measured. Every connection is served (one byte echoed) and closed,
 * max_connections refuses the ones beyond it cleanly and counts them, and afterwards Fulcrum's file
 * descriptors are back to their baseline. Memory per connection is printed as a `reliability-figure`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fdsSettle, startFulcrumProcess, until, type FulcrumProcess } from "./helpers/fulcrum-process.js";
import { startLoadClient, type LoadClient } from "./helpers/load-client-process.js";
import { hardOpenFilesLimit } from "./helpers/proc-stats.js";
import { startTcpWorker, type TcpWorkerProcess } from "./helpers/tcp-worker-process.js";

const HARD_LIMIT = hardOpenFilesLimit();
const N = Math.min(10_000, Math.floor((HARD_LIMIT - 500) / 2));
/** Connections tried beyond max_connections (= N). */
const EXTRA = 50;
/**
 * What an idle spliced connection may cost Fulcrum in resident memory: two sockets with their
 * handles, stream state and pipe wiring. A budget well above what is measured (printed), so a leak or
 * a buffer kept per connection fails it while allocator noise does not.
 */
const RSS_BUDGET_PER_CONNECTION_KIB = 24;

describe("tcp flood (fulcrum, clients and worker in separate processes)", { timeout: 420_000 }, () => {
  it(
    `${N} concurrent idle connections: all served and closed; max_connections refuses and counts the rest`,
    { timeout: 360_000 },
    async () => {
      assert.ok(N >= 1000, `the hard open-files limit (${HARD_LIMIT}) leaves room for only ${N} connections`);
      let worker: TcpWorkerProcess | undefined;
      let f: FulcrumProcess | undefined;
      let clients: LoadClient | undefined;
      try {
        worker = await startTcpWorker({ name: "w", mode: "echo", openFiles: HARD_LIMIT });
        f = await startFulcrumProcess({
          openFiles: HARD_LIMIT,
          listening: 2,
          yaml: `
admin: { listen: "127.0.0.1:0" }
drain_timeout: 5s
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:0", cluster: w, max_connections: ${N}, idle_timeout: 10m }
clusters:
  - { name: w, health_check: { type: none }, endpoints: [{ address: "${worker.address}" }] }
`,
        });
        const fulcrum = f;
        const w = worker;
        clients = await startLoadClient({ openFiles: HARD_LIMIT });
        const target = f.target("in");

        // Warm-up: the first connections open what stays open (and compile the path); then the baseline.
        assert.equal((await clients.open(target, 20)).opened, 20);
        assert.equal((await clients.echo()).echoed, 20);
        await clients.close();
        await until(async () => (await w.stats()).open === 0, 10_000, "the warm-up connections to close");
        await new Promise((r) => setTimeout(r, 1000));
        const fdBase = f.openFiles();
        const memBase = f.memory();
        f.resetPeak();

        const opened = await clients.open(target, N, 128);
        assert.deepEqual(
          { opened: opened.opened, failed: opened.failed },
          { opened: N, failed: 0 },
          JSON.stringify(opened.errors),
        );
        // Opened at the client is not yet spliced: wait until the worker holds every one.
        await until(async () => (await w.stats()).open === N, 60_000, `${N} connections at the worker`, 200);
        await until(
          () => fulcrum.openFiles() >= fdBase + 2 * N,
          10_000,
          "Fulcrum to hold two fds per connection",
        );
        await new Promise((r) => setTimeout(r, 1000));
        const memOpen = f.memory();
        const fdOpen = f.openFiles();

        const refusedBefore = await f.metric("fulcrum_downstream_connections_refused_total", {
          listener: "in",
          reason: "max_connections",
        });
        const extra = await clients.extra(target, EXTRA, 3000);
        for (const o of extra) {
          assert.ok(o.end === "fin" || o.end === "ECONNRESET", `refused, not kept: ${JSON.stringify(o)}`);
          assert.equal(o.bytes, 0);
        }
        assert.equal(
          (await f.metric("fulcrum_downstream_connections_refused_total", {
            listener: "in",
            reason: "max_connections",
          })) - refusedBefore,
          EXTRA,
        );

        const echo = await clients.echo(120_000);
        assert.deepEqual({ echoed: echo.echoed, failed: echo.failed }, { echoed: N, failed: 0 });
        const memEchoed = f.memory();

        const closed = await clients.close(120_000);
        assert.deepEqual({ clean: closed.clean, forced: closed.forced }, { clean: N, forced: 0 });
        await until(
          async () => (await w.stats()).open === 0,
          60_000,
          "the worker's connections to close",
          200,
        );
        const fdAfter = await fdsSettle(f, fdBase, 5, 30_000);
        assert.equal(await f.metric("fulcrum_downstream_connections_active", { listener: "in" }), 0);
        const status = await f.status();
        assert.equal(status.clusters[0]?.endpoints[0]?.active, 0, "the endpoint's active count is back to 0");

        const perConnKiB = (memOpen.rssKiB - memBase.rssKiB) / N;
        console.log(
          `reliability-figure ${JSON.stringify({
            figure: "tcp_flood",
            hard_open_files_limit: HARD_LIMIT,
            connections: N,
            open_seconds: +(opened.ms / 1000).toFixed(1),
            echo_seconds: +(echo.ms / 1000).toFixed(1),
            close_seconds: +(closed.ms / 1000).toFixed(1),
            rss_baseline_mib: +(memBase.rssKiB / 1024).toFixed(1),
            rss_open_mib: +(memOpen.rssKiB / 1024).toFixed(1),
            rss_after_echo_mib: +(memEchoed.rssKiB / 1024).toFixed(1),
            rss_peak_mib: +(f.memory().hwmKiB / 1024).toFixed(1),
            rss_per_connection_kib: +perConnKiB.toFixed(2),
            rss_per_connection_after_echo_kib: +((memEchoed.rssKiB - memBase.rssKiB) / N).toFixed(2),
            fds_baseline: fdBase,
            fds_open: fdOpen,
            fds_after: fdAfter,
            refused_beyond_max: EXTRA,
          })}`,
        );
        assert.ok(
          perConnKiB <= RSS_BUDGET_PER_CONNECTION_KIB,
          `${perConnKiB.toFixed(1)} KiB per idle connection (budget ${RSS_BUDGET_PER_CONNECTION_KIB})`,
        );
      } finally {
        await clients?.kill();
        await f?.stop();
        await worker?.kill();
      }
    },
  );
});
