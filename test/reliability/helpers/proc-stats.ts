/**
 * What the reliability tests read about a process from Linux's /proc: resident memory (VmRSS) and its
 * peak (VmHWM), open file descriptors, listening TCP sockets, and the open-files limit. Read from
 * outside the process, so the numbers are the kernel's, not what the process believes about itself.
 */
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";

export interface ProcessMemory {
  /** Resident set size now, in KiB. */
  readonly rssKiB: number;
  /** Peak resident set size since start or since `resetPeakRss`, in KiB. */
  readonly hwmKiB: number;
}

export function processMemory(pid: number): ProcessMemory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status);
    if (!m) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(m[1]);
  };
  return { rssKiB: field("VmRSS"), hwmKiB: field("VmHWM") };
}

/**
 * Resets VmHWM to the current RSS (clear_refs value 5, Linux ≥ 4.0), so a later VmHWM is the peak of
 * what happened in between. Returns false where the kernel does not allow it.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

export function openFiles(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** The socket inodes among a process's file descriptors. */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1] as string);
    } catch {
      // closed between readdir and readlink
    }
  }
  return inodes;
}

/** `host:port` of every TCP socket in LISTEN state that the process holds (IPv4 and IPv6). */
export function listeningSockets(pid: number): string[] {
  const mine = socketInodes(pid);
  const out: string[] = [];
  for (const [file, v6] of [
    ["tcp", false],
    ["tcp6", true],
  ] as const) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address, state 0A = LISTEN, inode in column 10
      if (cols.length < 10 || cols[3] !== "0A" || !mine.has(cols[9] as string)) continue;
      const [hexHost = "", hexPort = "0"] = (cols[1] as string).split(":");
      out.push(`${v6 ? `[${ipv6Of(hexHost)}]` : ipv4Of(hexHost)}:${parseInt(hexPort, 16)}`);
    }
  }
  return out;
}

/** /proc/net/tcp writes an IPv4 address as one little-endian 32-bit hex word. */
function ipv4Of(hex: string): string {
  const n = parseInt(hex, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join(".");
}

/** /proc/net/tcp6: four little-endian 32-bit words; shown in full, uncompressed form. */
function ipv6Of(hex: string): string {
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) {
    const word = hex.slice(w * 8, w * 8 + 8);
    for (let b = 3; b >= 0; b--) bytes.push(parseInt(word.slice(b * 2, b * 2 + 2), 16));
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups.join(":");
}

/** The hard limit on open files of this process (what `ulimit -Hn` prints). */
export function hardOpenFilesLimit(): number {
  const limits = readFileSync("/proc/self/limits", "utf8");
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  if (!m) throw new Error("/proc/self/limits has no open-files line");
  return m[2] === "unlimited" ? Number.MAX_SAFE_INTEGER : Number(m[2]);
}
