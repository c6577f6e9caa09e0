/**
 * The shipped examples made runnable for tests: examples/*.yaml name TLS files that are not in the
 * repository (tls.crt, tls.key, ca.crt beside the config) and examples/kubernetes.yaml ships the
 * placeholder admin token, which the config refuses on its 0.0.0.0 admin address. A runnable copy
 * has both filled in: throwaway certificates at the names the example gives, a real token.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parse } from "yaml";
import { namedFiles } from "../../src/config/config-files.js";
import { PLACEHOLDER_TOKEN } from "../../src/config/config-load.js";
import type { TestCerts } from "./grpc-certs.js";
import { repoRoot } from "./repo-root.js";

export const EXAMPLES_DIR = join(repoRoot(), "examples");

/** The token the runnable copies carry instead of the placeholder. */
export const TEST_TOKEN = "example-test-token-0123456789";

/** The example's text with the placeholder admin token replaced by TEST_TOKEN. */
export function exampleWithToken(text: string): string {
  return text.replaceAll(`token: "${PLACEHOLDER_TOKEN}"`, `token: "${TEST_TOKEN}"`);
}

/**
 * Writes `examples/<name>` into `dir` with a real token and every file it names (certificate: the
 * test server's, key: its key, CA: the test CA) where the config expects it; returns the copy's path.
 */
export function runnableExample(name: string, dir: string, certs: TestCerts): string {
  const text = readFileSync(join(EXAMPLES_DIR, name), "utf8");
  const file = join(dir, name);
  writeFileSync(file, exampleWithToken(text));
  const source = {
    certificate: certs.server.certPath,
    "private key": certs.server.keyPath,
    "CA bundle": certs.ca.certPath,
  };
  for (const f of namedFiles(parse(text))) {
    const target = resolve(dir, f.file);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(source[f.kind], target);
  }
  return file;
}
