/**
 * The files a config names (TLS certificates, keys, CAs), read and parsed as the listeners and
 * upstream pools will read them, so that a missing, unreadable or malformed file is a path-named
 * config error from `check`, `run` and reload instead of a failure once traffic arrives. Messages
 * name the resolved absolute path, never the file's content; a value that looks like PEM or key
 * material pasted where a file name belongs is not shown at all (it may be the key itself).
 */
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { ConfigIssue } from "./config-error.js";
import type { FulcrumConfig } from "./config-schema.js";

/** What a named file must hold. */
export type NamedFileKind = "certificate" | "private key" | "CA bundle";

/** One file named by the config: where (YAML path), which file (as written), and what it holds. */
export interface NamedFile {
  readonly path: (string | number)[];
  readonly file: string;
  readonly kind: NamedFileKind;
}

type Raw = Record<string, unknown>;
const isObject = (v: unknown): v is Raw => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Every file named in a config, resolved or raw (read before validation: each entry needs only its
 * own value to be a string). Order: as in the contract, listener files before cluster files.
 */
export function namedFiles(config: unknown): NamedFile[] {
  if (!isObject(config)) return [];
  const out: NamedFile[] = [];
  const add = (path: (string | number)[], value: unknown, kind: NamedFileKind): void => {
    if (typeof value === "string") out.push({ path, file: value, kind });
  };
  (Array.isArray(config.listeners) ? config.listeners : []).forEach((l: unknown, i) => {
    if (!isObject(l) || !isObject(l.tls)) return;
    add(["listeners", i, "tls", "cert"], l.tls.cert, "certificate");
    add(["listeners", i, "tls", "key"], l.tls.key, "private key");
    add(["listeners", i, "tls", "client_ca"], l.tls.client_ca, "CA bundle");
  });
  (Array.isArray(config.clusters) ? config.clusters : []).forEach((c: unknown, i) => {
    if (isObject(c) && isObject(c.tls)) add(["clusters", i, "tls", "ca"], c.tls.ca, "CA bundle");
  });
  return out;
}

/** A value that is content, not a file name: PEM, several lines, or a long base64 run. */
function looksLikeContent(value: string): boolean {
  return value.includes("-----") || /[\r\n]/.test(value) || /[A-Za-z0-9+/=]{64,}/.test(value);
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: "no such file",
  ENOTDIR: "no such file",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "is a directory",
};

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The certificates of a PEM file, or why there are none usable. */
function parseCertificates(text: string): X509Certificate[] | string {
  const blocks = text.match(PEM_CERT_RE) ?? [];
  if (blocks.length === 0) return "holds no PEM certificate";
  const certs: X509Certificate[] = [];
  for (const [n, block] of blocks.entries()) {
    try {
      certs.push(new X509Certificate(block));
    } catch {
      return blocks.length === 1
        ? "holds a PEM certificate that cannot be parsed"
        : `holds a PEM certificate that cannot be parsed (number ${n + 1} of ${blocks.length})`;
    }
  }
  return certs;
}

function parseKey(bytes: Buffer): KeyObject | string {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(bytes.toString("latin1"))) return "holds no PEM private key";
  try {
    return createPrivateKey(bytes);
  } catch (err) {
    // OpenSSL's messages name no content; an encrypted key is the one case worth telling apart.
    return (err as NodeJS.ErrnoException).code === "ERR_MISSING_PASSPHRASE"
      ? "holds an encrypted private key (Fulcrum reads unencrypted PEM keys only)"
      : "holds no private key that can be parsed (PEM expected)";
  }
}

/**
 * The problems of the files `files` name, each at its YAML path; relative names are resolved
 * against `baseDir` (absolute ones, as in a resolved config, stay as they are). A listener's key
 * must match its certificate.
 */
export function fileIssues(
  files: readonly NamedFile[],
  baseDir: string,
): (ConfigIssue & { at: NamedFile })[] {
  const issues: (ConfigIssue & { at: NamedFile })[] = [];
  const certOf = new Map<string, X509Certificate>();
  const keyOf = new Map<string, { key: KeyObject; file: string }>();
  const dotted = (p: readonly (string | number)[]): string =>
    p.map((x, i) => (typeof x === "number" ? `[${x}]` : i === 0 ? x : `.${x}`)).join("");
  for (const f of files) {
    const fail = (message: string): void => {
      issues.push({ path: dotted(f.path), message, at: f });
    };
    if (f.file === "" || looksLikeContent(f.file)) {
      fail(`expected the name of a ${f.kind} file (PEM), got what looks like content (not shown)`);
      continue;
    }
    const abs = resolve(baseDir, f.file);
    let bytes: Buffer;
    try {
      bytes = readFileSync(abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
      fail(`cannot read ${JSON.stringify(abs)}: ${READ_ERRORS[code] ?? code}`);
      continue;
    }
    const owner = dotted(f.path.slice(0, -1));
    if (f.kind === "private key") {
      const key = parseKey(bytes);
      if (typeof key === "string") fail(`${JSON.stringify(abs)} ${key}`);
      else keyOf.set(owner, { key, file: abs });
      continue;
    }
    const certs = parseCertificates(bytes.toString("utf8"));
    if (typeof certs === "string") fail(`${JSON.stringify(abs)} ${certs}`);
    else if (f.kind === "certificate" && certs[0]) certOf.set(owner, certs[0]);
  }
  for (const [owner, { key, file }] of keyOf) {
    const cert = certOf.get(owner);
    if (cert && !cert.checkPrivateKey(key)) {
      const at = files.find((f) => dotted(f.path) === `${owner}.key`);
      if (at)
        issues.push({
          path: `${owner}.key`,
          message: `${JSON.stringify(file)} does not match the certificate of ${owner}.cert`,
          at,
        });
    }
  }
  return issues;
}

/**
 * The file problems of a resolved config (paths already absolute), for configs that did not come
 * through `loadConfigFile` (tests, the demo) and for reload.
 */
export function unreadableFiles(config: FulcrumConfig): ConfigIssue[] {
  return fileIssues(namedFiles(config), "/").map(({ path, message }) => ({ path, message }));
}
