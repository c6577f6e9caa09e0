/**
 * Throwaway certificates for the TLS tests, made with the openssl CLI in a temp directory: a test CA,
 * a server certificate it signed (SAN IP:127.0.0.1, IP:::1, DNS:localhost, DNS:worker.fulcrum.test),
 * a client certificate it signed, and a second, unrelated CA with its own client certificate for
 * the "wrong CA" cases. P-256 keys (fast to make); valid for two days.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface CertPair {
  readonly certPath: string;
  readonly keyPath: string;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface TestCerts {
  readonly dir: string;
  /** The CA that signed `server` and `client`. */
  readonly ca: CertPair;
  readonly server: CertPair;
  readonly client: CertPair;
  /** An unrelated CA, and a client certificate it signed. */
  readonly otherCa: CertPair;
  readonly otherClient: CertPair;
  /** The DNS name in the server certificate besides localhost. */
  readonly serverName: string;
  remove(): void;
}

const SERVER_NAME = "worker.fulcrum.test";

function openssl(dir: string, args: readonly string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function pair(dir: string, name: string): CertPair {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  return { certPath, keyPath, cert: readFileSync(certPath), key: readFileSync(keyPath) };
}

const KEY_ARGS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

function makeCa(dir: string, name: string, cn: string): CertPair {
  openssl(dir, [
    "req",
    "-x509",
    ...KEY_ARGS,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-subj",
    `/CN=${cn}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  return pair(dir, name);
}

function makeLeaf(
  dir: string,
  name: string,
  cn: string,
  ca: string,
  extensions: string,
  serial: number,
): CertPair {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(dir, [
    "req",
    "-new",
    ...KEY_ARGS,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${cn}`,
  ]);
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
    "-set_serial",
    String(serial),
    "-days",
    "2",
    "-out",
    `${name}.crt`,
    "-extfile",
    `${name}.ext`,
  ]);
  return pair(dir, name);
}

/** Makes the certificates (synchronously; well under a second). Call `remove()` when done. */
export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), "fulcrum-tls-"));
  const common = "basicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";
  try {
    const ca = makeCa(dir, "ca", "Fulcrum Test CA");
    const otherCa = makeCa(dir, "other-ca", "Unrelated Test CA");
    const server = makeLeaf(
      dir,
      "server",
      "localhost",
      "ca",
      common +
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n" +
        `subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:${SERVER_NAME}\n`,
      1001,
    );
    const clientExt = common + "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n";
    const client = makeLeaf(dir, "client", "fulcrum-test-client", "ca", clientExt, 1002);
    const otherClient = makeLeaf(dir, "other-client", "unrelated-client", "other-ca", clientExt, 1003);
    return {
      dir,
      ca,
      server,
      client,
      otherCa,
      otherClient,
      serverName: SERVER_NAME,
      remove: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
