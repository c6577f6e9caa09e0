/**
 * The status page in headless Chromium: it lists the three endpoints of a cluster, and after a drain
 * through the admin API the open page — not reloaded — shows the endpoint drained within two refresh
 * periods. After a known gRPC load (20 OK calls to one worker, 5 UNIMPLEMENTED and 3 UNAVAILABLE
 * answers from another, a third worker stopped) it shows names, latency, error counts by status, the
 * health change with its reason, sparklines, version and uptime; when Fulcrum stops, the page greys
 * its last data out under "cannot reach Fulcrum since …". Screenshots are kept in test-artifacts/.
 */
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import type { Browser } from "playwright-core";
import { countNames, echoClient, grpcEngine, who } from "../helpers/grpc-client.js";
import type { GrpcTestWorker } from "../helpers/grpc-test-worker.js";
import { startGrpcWorkers } from "../helpers/grpc-test-worker.js";
import { repoRoot } from "../helpers/repo-root.js";
import { join } from "node:path";
import type { SimTcpWorker } from "../../src/sim/sim-tcp-worker.js";
import { adminPost } from "../helpers/admin-client.js";
import { artifactPath, launchBrowser } from "../helpers/browser.js";
import {
  closeAll,
  endpointsYaml,
  startFulcrum,
  startWorkers,
  waitFor,
  type StartedFulcrum,
} from "../helpers/harness.js";

const REFRESH_MS = 500;

describe("status page", { timeout: 90_000 }, () => {
  let workers: SimTcpWorker[] = [];
  let f: StartedFulcrum | undefined;
  let browser: Browser | undefined;

  before(async () => {
    workers = await startWorkers(["a", "b", "c"]);
    f = await startFulcrum(`
admin: { listen: "127.0.0.1:0" }
listeners:
  - { name: models, protocol: tcp, listen: "127.0.0.1:0", cluster: gpus }
clusters:
  - name: gpus
    policy: least_connections
    health_check: { type: none }
    endpoints:
${endpointsYaml(workers)}
`);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await closeAll(f, workers);
  });

  it("shows three endpoints, then a drain within two refresh periods without a reload", async () => {
    const admin = (f as StartedFulcrum).fulcrum.adminAddress ?? "";
    const page = await (browser as Browser).newPage({ viewport: { width: 1100, height: 700 } });
    let loads = 0;
    page.on("load", () => loads++);
    await page.goto(`http://${admin}/?refresh=${REFRESH_MS}`);
    const rows = page.locator('section[data-cluster="gpus"] tr[data-endpoint]');
    await rows.first().waitFor({ timeout: 10_000 });
    assert.equal(await rows.count(), 3);
    const addresses = workers.map((w) => `127.0.0.1:${w.port}`);
    const attribute = async (name: string): Promise<(string | null)[]> =>
      Promise.all([0, 1, 2].map((i) => rows.nth(i).getAttribute(name)));
    assert.deepEqual(await attribute("data-endpoint"), addresses);
    assert.deepEqual(await attribute("data-state"), ["healthy", "healthy", "healthy"]);
    assert.match(await page.locator("#listeners").innerText(), /models/);

    const target = addresses[1] as string;
    const drainedAt = Date.now();
    assert.equal(
      (await adminPost(admin, "/endpoints/drain", { cluster: "gpus", address: target })).status,
      200,
    );
    await page
      .locator(`tr[data-endpoint="${target}"][data-state="drained"]`)
      .waitFor({ timeout: 2 * REFRESH_MS + 250 });
    const shownAfter = Date.now() - drainedAt;
    assert.ok(shownAfter <= 2 * REFRESH_MS + 250, `shown after ${shownAfter} ms`);
    assert.equal(loads, 1, "the page was not reloaded");
    assert.match(await page.locator(`tr[data-endpoint="${target}"]`).innerText(), /drained/);

    const png = artifactPath("status-page.png");
    await page.screenshot({ path: png, fullPage: true });
    assert.ok(existsSync(png) && statSync(png).size > 1000);
    await page.close();
  });
});

describe("status page after a known gRPC load", { timeout: 90_000 }, () => {
  let workers: GrpcTestWorker[] = [];
  let f: StartedFulcrum | undefined;
  let browser: Browser | undefined;
  let client: grpc.Client | undefined;

  before(async () => {
    workers = await startGrpcWorkers(["a", "b", "c"]);
    (workers[0] as GrpcTestWorker).delayMs = 20;
    f = await startFulcrum(`
admin: { listen: "127.0.0.1:0" }
listeners:
  - { name: g, protocol: grpc, engine: ${grpcEngine()}, listen: "127.0.0.1:0", cluster: gpus }
clusters:
  - name: gpus
    policy: round_robin
    health_check: { type: grpc, interval: 200ms, timeout: 200ms, healthy_threshold: 1, unhealthy_threshold: 2 }
    endpoints:
${workers.map((w) => `      - { address: "${w.address}", name: gpu-${w.name} }`).join("\n")}
`);
    client = echoClient(f.target());
    browser = await launchBrowser();
  });
  after(async () => {
    client?.close();
    await browser?.close();
    await f?.fulcrum.stop(0);
    await Promise.all(workers.map((w) => w.close()));
  });

  it("shows names, latency, statuses, the health change and sparklines; greys out when Fulcrum stops", async () => {
    const started = f as StartedFulcrum;
    const admin = started.fulcrum.adminAddress ?? "";
    const c = client as grpc.Client;
    const [a, b, stopped] = workers as [GrpcTestWorker, GrpcTestWorker, GrpcTestWorker];
    const post = async (path: string, worker: GrpcTestWorker): Promise<void> => {
      const reply = await adminPost(admin, path, { cluster: "gpus", address: worker.address });
      assert.equal(reply.status, 200, reply.text);
    };
    const calls = async (n: number): Promise<Record<string, number>> => {
      const outcomes = [];
      for (let i = 0; i < n; i++) outcomes.push(await who(c));
      return countNames(outcomes);
    };
    // Drains steer the load: 20 OK calls to a, then 5 UNIMPLEMENTED and 3 UNAVAILABLE from b.
    await post("/endpoints/drain", b);
    await post("/endpoints/drain", stopped);
    assert.deepEqual(await calls(20), { a: 20 });
    await post("/endpoints/undrain", b);
    await post("/endpoints/drain", a);
    b.failWith = { code: grpc.status.UNIMPLEMENTED, details: "no such method" };
    assert.deepEqual(await calls(5), { "!UNIMPLEMENTED": 5 });
    b.failWith = { code: grpc.status.UNAVAILABLE, details: "overloaded" };
    assert.deepEqual(await calls(3), { "!UNAVAILABLE": 3 });
    await post("/endpoints/undrain", a);
    await post("/endpoints/undrain", stopped);
    await stopped.close();

    const page = await (browser as Browser).newPage({ viewport: { width: 1500, height: 600 } });
    await page.goto(`http://${admin}/?refresh=${REFRESH_MS}`);
    const row = (w: GrpcTestWorker) => page.locator(`tr[data-endpoint="${w.address}"]`);
    const cell = (w: GrpcTestWorker, col: string) => row(w).locator(`td[data-col="${col}"]`);
    // grpc health: 2 failed probes at 200 ms, by (threshold + 1) × interval + timeout + 1 s.
    await page
      .locator(`tr[data-endpoint="${stopped.address}"][data-state="unhealthy"]`)
      .waitFor({ timeout: 5000 });

    for (const w of workers) assert.equal(await cell(w, "name").innerText(), `gpu-${w.name}`);
    const p50 = Number(await cell(a, "p50").innerText());
    const p99 = Number(await cell(a, "p99").innerText());
    // The worker waits 20 ms; a histogram bin spans ±13 % of its middle.
    assert.ok(p50 >= 16 && p99 >= p50, `a: p50 ${p50} p99 ${p99}`);
    assert.ok(Number.isFinite(Number(await cell(b, "p50").innerText())), "b has a latency");
    assert.equal(await cell(a, "statuses").locator("[data-status]").count(), 0);
    assert.equal(
      await cell(b, "statuses").locator('[data-status="UNIMPLEMENTED"]').innerText(),
      "UNIMPLEMENTED 5",
    );
    assert.equal(
      await cell(b, "statuses").locator('[data-status="UNAVAILABLE"]').innerText(),
      "UNAVAILABLE 3",
    );
    assert.equal(await cell(b, "statuses").locator("[data-status]").count(), 2);
    assert.equal(await cell(b, "errors").innerText(), "0", "answers with an error status are not failures");
    assert.match(
      await cell(stopped, "change").innerText(),
      /^unhealthy at \d\d:\d\d:\d\d: 2 failed probes \(.+\)$/,
    );
    assert.match(
      await cell(a, "change").innerText(),
      /^undrained at \d\d:\d\d:\d\d: undrained by admin API$/,
    );
    assert.ok((await cell(a, "spark").locator("svg rect").count()) >= 1, "a's sparkline has a bar");
    assert.ok((await cell(b, "spark").locator("svg rect").count()) >= 1, "b's sparkline has a bar");
    assert.equal(await cell(stopped, "spark").locator("svg").count(), 1);
    const pkg = JSON.parse(readFileSync(join(repoRoot(), "package.json"), "utf8")) as { version: string };
    assert.equal(await page.locator("#version").innerText(), pkg.version);
    assert.match(await page.locator("#uptime").innerText(), /^up (\d+[dhm] )*\d+s ·/);
    assert.equal(await page.locator("body.stale").count(), 0);
    const png = artifactPath("status-page-grpc.png");
    await page.screenshot({ path: png, fullPage: true });
    assert.ok(existsSync(png) && statSync(png).size > 1000);

    await started.fulcrum.stop(0);
    await page.locator("body.stale").waitFor({ timeout: 2 * REFRESH_MS + 1000 });
    assert.match(await page.locator("#error").innerText(), /^cannot reach Fulcrum since \d\d:\d\d:\d\d/);
    assert.equal(
      await cell(b, "statuses").locator('[data-status="UNAVAILABLE"]').innerText(),
      "UNAVAILABLE 3",
    );
    await waitFor(async () => (await page.locator("#error").innerText()).length > 0, 1000, "the banner");
    await page.screenshot({ path: artifactPath("status-page-stale.png"), fullPage: true });
    await page.close();
  });
});
