/**
 * `fulcrum demo` (what `npm start` runs), the built CLI as a child with every port 0: within 5 s of its
 * `listening` lines the status page, open in headless Chromium, shows live numbers — gRPC totals above
 * 0, rising between two reads, spread over more than one worker — from the built-in load; the
 * screenshot is kept in test-artifacts/demo-status-page.png. With `--no-traffic` the totals stay 0.
 * The banner names the status page and the `fulcrum call` commands; SIGTERM exits 0.
 */
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { after, afterEach, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { artifactPath, launchBrowser } from "../helpers/browser.js";
import { startCli, type CliProcess } from "../helpers/cli-process.js";
import { waitFor } from "../helpers/harness.js";

const PORTS_0 = ["--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"];
const GRPC_ROWS = 'section[data-cluster="demo-grpc-workers"] tr[data-endpoint]';

async function totalsOnPage(page: Page): Promise<number[]> {
  const rows = page.locator(GRPC_ROWS);
  const count = await rows.count();
  const texts = await Promise.all(
    Array.from({ length: count }, (_, i) => rows.nth(i).locator('td[data-col="total"]').innerText()),
  );
  return texts.map(Number);
}

interface Status {
  clusters: { name: string; endpoints: { total: number }[] }[];
}

async function grpcTotals(admin: string): Promise<number[]> {
  const status = (await (await fetch(`http://${admin}/status`)).json()) as Status;
  return status.clusters.find((c) => c.name === "demo-grpc-workers")?.endpoints.map((e) => e.total) ?? [];
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

describe("fulcrum demo", { timeout: 90_000 }, () => {
  let browser: Browser | undefined;
  let demo: CliProcess | undefined;

  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    if (demo && demo.child.exitCode === null) {
      demo.child.kill("SIGKILL");
      await demo.exited();
    }
    demo = undefined;
  });

  it("shows live, balanced numbers on its status page within 5 s, then stops on SIGTERM", async () => {
    demo = await startCli(["demo", ...PORTS_0], 3);
    const listeningAt = Date.now();
    const admin = demo.address("admin");
    const grpcAddress = demo.address("demo-grpc");
    const page = await (browser as Browser).newPage({ viewport: { width: 1440, height: 900 } });
    await page.goto(`http://${admin}/?refresh=500`);
    await page.locator(GRPC_ROWS).first().waitFor({ timeout: 5000 });
    let first: number[] = [];
    await waitFor(
      async () => {
        first = await totalsOnPage(page);
        return sum(first) > 0;
      },
      Math.max(0, 5000 - (Date.now() - listeningAt)),
      "gRPC totals above 0 on the status page",
      100,
    );
    assert.equal(first.length, 3, "three gRPC workers");
    const firstAt = Date.now();
    let second: number[] = [];
    await waitFor(
      async () => {
        second = await totalsOnPage(page);
        return sum(second) > sum(first) && second.filter((t) => t > 0).length > 1;
      },
      5000,
      "totals rising, over more than one worker",
      100,
    );
    // Gentle: the built-in load starts at most 100 calls/s (the page's totals lag by one refresh).
    const seconds = (Date.now() - firstAt + 1000) / 1000;
    assert.ok(
      sum(second) - sum(first) <= 100 * seconds + 8,
      `${sum(second) - sum(first)} calls in ${seconds} s`,
    );
    // The demo names its endpoints (endpoints[].name), so the page says which GPU each row is.
    const rows = (await page.locator(GRPC_ROWS).allInnerTexts()).join("\n");
    for (const name of ["gpu-0", "gpu-1", "gpu-2"]) assert.ok(rows.includes(name), `${name} on the page`);
    const png = artifactPath("demo-status-page.png");
    await page.screenshot({ path: png, fullPage: true });
    assert.ok(existsSync(png) && statSync(png).size > 1000);
    await page.close();

    const banner = demo.stderr();
    assert.ok(banner.includes(`status page: http://${admin}/`), banner);
    assert.ok(
      banner.includes(
        `npx fulcrum call --address ${grpcAddress} --method /inference.GRPCInferenceService/ModelInfer --count 10`,
      ),
      banner,
    );
    assert.ok(banner.includes(`npx fulcrum call --address ${demo.address("demo-tcp")} --tcp`), banner);
    assert.match(banner, /gpu-2 \(grpc\): .*3× slower/);
    demo.child.kill("SIGTERM");
    assert.equal(await demo.exited(), 0);
  });

  it("--no-traffic: the totals stay 0", async () => {
    demo = await startCli(["demo", ...PORTS_0, "--no-traffic"], 3);
    const admin = demo.address("admin");
    assert.deepEqual(await grpcTotals(admin), [0, 0, 0]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.deepEqual(await grpcTotals(admin), [0, 0, 0]);
    assert.match(demo.stderr(), /built-in load: off/);
    demo.child.kill("SIGTERM");
    assert.equal(await demo.exited(), 0);
  });
});
