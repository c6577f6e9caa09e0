/**
 * Installs the Debian packages the peers and C load generators come from, when their binaries are
 * missing, and says so on stderr. Only the binaries are used: nothing is started as a system service
 * (Debian's maintainer scripts may try; the bench starts its own copies with generated configs).
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

/** A binary the bench runs and the Debian package that ships it. */
export interface Tool {
  readonly binary: string;
  readonly pkg: string;
}

export const TOOLS = {
  haproxy: { binary: "/usr/sbin/haproxy", pkg: "haproxy" },
  nginx: { binary: "/usr/sbin/nginx", pkg: "nginx" },
  nginxStream: { binary: "/usr/lib/nginx/modules/ngx_stream_module.so", pkg: "libnginx-mod-stream" },
  iperf3: { binary: "/usr/bin/iperf3", pkg: "iperf3" },
  wrk: { binary: "/usr/bin/wrk", pkg: "wrk" },
  h2load: { binary: "/usr/bin/h2load", pkg: "nghttp2-client" },
} as const satisfies Record<string, Tool>;

/** Installs the packages of the missing `tools` (apt-get, as root); throws when that is impossible. */
export function ensureTools(tools: readonly Tool[]): void {
  const missing = [...new Set(tools.filter((t) => !existsSync(t.binary)).map((t) => t.pkg))];
  if (missing.length === 0) return;
  process.stderr.write(`bench: installing Debian packages: ${missing.join(" ")}\n`);
  if (process.getuid?.() !== 0) {
    throw new Error(`not root: install them with: sudo apt-get install -y ${missing.join(" ")}`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = (): void => {
    execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], {
      env,
      stdio: ["ignore", "ignore", "inherit"],
    });
  };
  try {
    install();
  } catch {
    // A fresh machine may have no package lists yet.
    execFileSync("apt-get", ["update", "-qq"], { env, stdio: ["ignore", "ignore", "inherit"] });
    install();
  }
  const still = tools.filter((t) => !existsSync(t.binary));
  if (still.length > 0)
    throw new Error(`still missing after apt-get: ${still.map((t) => t.binary).join(", ")}`);
}
