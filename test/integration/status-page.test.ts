/**
 * The status page in headless Chromium: it lists the three endpoints of a cluster, and after a drain
 * through the admin API the open page — not reloaded — shows the endpoint drained within two refresh
 * periods. The screenshot is kept in test-artifacts/.
 */
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import type { Browser } from "playwright-core";
import type { SimTcpWorker } from "../../src/sim/sim-tcp-worker.js";
import { adminPost } from "../helpers/admin-client.js";
import { artifactPath, launchBrowser } from "../helpers/browser.js";
import {
  closeAll,
  endpointsYaml,
  startFulcrum,
  startWorkers,
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
