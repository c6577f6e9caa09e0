/**
 * Headless Debian chromium driven by playwright-core (no browser download: `executablePath`), with
 * the flags this closed network needs. Screenshots go under the git-ignored `test-artifacts/`.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { repoRoot } from "./repo-root.js";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** `test-artifacts/<name>`, creating the folder. */
export function artifactPath(name: string): string {
  const dir = join(repoRoot(), "test-artifacts");
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
