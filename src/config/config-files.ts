/**
 * Files a config names (TLS certificates, keys, CAs) that cannot be read, as path-named errors: run
 * and reload check them before anything starts, so a missing key is a config error, not a crash.
 * The message never repeats the value: a PEM pasted where a file name belongs would be the key itself.
 */
import { readFileSync } from "node:fs";
import type { ConfigIssue } from "./config-error.js";
import type { FulcrumConfig } from "./config-schema.js";

export function unreadableFiles(config: FulcrumConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const check = (path: string, file: string | undefined): void => {
    if (file === undefined) return;
    try {
      readFileSync(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
      issues.push({ path, message: `cannot read the file it names (${code})` });
    }
  };
  config.listeners.forEach((l, i) => {
    check(`listeners[${i}].tls.cert`, l.tls?.cert);
    check(`listeners[${i}].tls.key`, l.tls?.key);
    check(`listeners[${i}].tls.client_ca`, l.tls?.client_ca);
  });
  config.clusters.forEach((c, i) => check(`clusters[${i}].tls.ca`, c.tls?.ca));
  return issues;
}
