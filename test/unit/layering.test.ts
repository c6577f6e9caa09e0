/**
 * The layering of src/: no import cycle between its folders nor between its files, type-only imports
 * counted (the lint's import-x/no-cycle follows value imports only, and a type cycle still ties two
 * layers together), and src/h2/ a library that imports nothing outside itself but node:buffer.
 *
 * Nodes of the folder graph: each top-level folder of src/, the two gRPC engines (src/grpc/engine-frames,
 * src/grpc/engine-http2) as nodes of their own, and the top-level files of src/ (the CLI) as one node.
 * Imports are read with the TypeScript compiler's own pre-processor (every `import`, `import type`,
 * `export … from` and dynamic `import()`), never with a regular expression.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, posix } from "node:path";
import { describe, it } from "node:test";
import ts from "typescript";
import { repoRoot } from "../helpers/repo-root.js";

const SRC = join(repoRoot(), "src");
/** Folders below a top-level folder that are nodes of their own. */
const OWN_NODES = ["grpc/engine-frames", "grpc/engine-http2"];
const TOP_FILES = "(src/*.ts)";

/**
 * Folder edges that close a cycle today and are being removed by the stream-core rewrite of src/grpc/
 * (its files switch from runtime/'s ClusterRuntime to cluster/'s UpstreamCluster, and StreamOutcome
 * leaves the http2 engine). They are left out of the graph until then; an edge listed here that no
 * longer exists fails the test, so the list only shrinks.
 */
const PENDING: readonly (readonly [string, string])[] = [];

/** One import: `from` imports `to` (paths relative to src/, with `/`), as the specifier wrote it. */
interface ImportEdge {
  readonly from: string;
  readonly to: string;
}

/** Every .ts file under src/, relative to src/. */
function sourceFiles(): string[] {
  return readdirSync(SRC, { recursive: true, encoding: "utf8" })
    .map((f) => f.split("\\").join("/"))
    .filter((f) => f.endsWith(".ts"))
    .sort();
}

/** The module specifiers `file` imports, as the TypeScript pre-processor reads them. */
function specifiersOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(join(SRC, file), "utf8"), true, true);
  return info.importedFiles.map((f) => f.fileName);
}

/** The src/ file a relative specifier names (`./x.js` is `x.ts`); undefined for a package or `node:`. */
function resolveLocal(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) return undefined;
  const target = posix.normalize(posix.join(posix.dirname(from), specifier)).replace(/\.js$/, ".ts");
  assert.ok(existsSync(join(SRC, target)), `${from} imports ${specifier}: no ${target} in src/`);
  return target;
}

function localImports(): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const from of sourceFiles()) {
    for (const specifier of specifiersOf(from)) {
      const to = resolveLocal(from, specifier);
      if (to !== undefined) edges.push({ from, to });
    }
  }
  return edges;
}

/** The folder-graph node of a file of src/. */
function folderOf(file: string): string {
  const own = OWN_NODES.find((n) => file.startsWith(n + "/"));
  if (own) return own;
  const slash = file.indexOf("/");
  return slash < 0 ? TOP_FILES : file.slice(0, slash);
}

/** node → node it imports → the first file import that makes the edge (for the message). */
type Graph = Map<string, Map<string, ImportEdge>>;

function graphOf(edges: readonly ImportEdge[], nodeOf: (file: string) => string): Graph {
  const graph: Graph = new Map();
  for (const e of edges) {
    const a = nodeOf(e.from);
    const b = nodeOf(e.to);
    if (!graph.has(a)) graph.set(a, new Map());
    if (!graph.has(b)) graph.set(b, new Map());
    if (a !== b && !graph.get(a)?.has(b)) graph.get(a)?.set(b, e);
  }
  return graph;
}

/**
 * One cycle per strongly connected component of more than one node (Tarjan), each as the node path
 * of a shortest cycle through the component's first node in sort order: `[a, b, …, a]`.
 */
function cyclesOf(graph: ReadonlyMap<string, ReadonlyMap<string, unknown>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string | undefined;
    do {
      w = stack.pop();
      if (w === undefined) break;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1) components.push(component.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return components
    .map((c) => shortestCycle(graph, c[0] as string, new Set(c)))
    .sort((a, b) => (a[0] ?? "").localeCompare(b[0] ?? ""));
}

/** A shortest path from `start` back to itself inside `within` (breadth first). */
function shortestCycle(
  graph: ReadonlyMap<string, ReadonlyMap<string, unknown>>,
  start: string,
  within: ReadonlySet<string>,
): string[] {
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i] as string;
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!within.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u: string | undefined = v; u !== undefined && u !== start; u = cameFrom.get(u)) path.push(u);
        return [start, ...path.slice(1).reverse(), start];
      }
      if (!cameFrom.has(w) && w !== start) {
        cameFrom.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** `a → b → a`, then each hop's first file import. */
function describeCycle(graph: Graph, cycle: readonly string[]): string {
  const hops: string[] = [];
  for (let i = 0; i + 1 < cycle.length; i++) {
    const e = graph.get(cycle[i] as string)?.get(cycle[i + 1] as string);
    if (e) hops.push(`  ${e.from} imports ${e.to}`);
  }
  return [cycle.join(" → "), ...hops].join("\n");
}

function withoutPending(graph: Graph): Graph {
  const out: Graph = new Map([...graph].map(([k, v]) => [k, new Map(v)]));
  for (const [a, b] of PENDING) out.get(a)?.delete(b);
  return out;
}

describe("layering of src/", { timeout: 60_000 }, () => {
  const edges = localImports();
  const folders = graphOf(edges, folderOf);

  it("reads the imports of every source file, type-only ones included", () => {
    assert.ok(sourceFiles().length > 100);
    // Sanity of the reader on known imports: a value import, a type-only one, and an engine node.
    const has = (from: string, to: string): boolean => edges.some((e) => e.from === from && e.to === to);
    assert.ok(has("runtime/fulcrum.ts", "admin/admin-server.ts"));
    assert.ok(has("admin/admin-server.ts", "admin/admin-host.ts"), "import type counts");
    assert.equal(folderOf("grpc/engine-frames/frames-listener.ts"), "grpc/engine-frames");
    assert.equal(folderOf("grpc/grpc-status.ts"), "grpc");
    assert.equal(folderOf("cli.ts"), TOP_FILES);
  });

  it("finds cycles in a graph that has them, and none in one that has none", () => {
    const g = (adj: Record<string, string[]>): Map<string, Map<string, unknown>> =>
      new Map(Object.entries(adj).map(([k, v]) => [k, new Map(v.map((w) => [w, true]))]));
    assert.deepEqual(cyclesOf(g({ a: ["b"], b: ["c"], c: ["a", "d"], d: [] })), [["a", "b", "c", "a"]]);
    assert.deepEqual(cyclesOf(g({ a: ["b"], b: ["a"], c: ["d"], d: ["e"], e: ["c"] })), [
      ["a", "b", "a"],
      ["c", "d", "e", "c"],
    ]);
    assert.deepEqual(cyclesOf(g({ a: ["b", "c"], b: ["c"], c: [] })), []);
  });

  it("has no import cycle between folders", () => {
    const graph = withoutPending(folders);
    const cycles = cyclesOf(graph);
    assert.deepEqual(
      cycles.map((c) => describeCycle(graph, c)),
      [],
      "folder cycles (move the shared piece down, or depend on an interface of the lower folder)",
    );
  });

  it("still has every pending folder edge (remove one from PENDING once it is gone)", () => {
    for (const [a, b] of PENDING)
      assert.ok(folders.get(a)?.has(b), `${a} → ${b} is gone: remove it from PENDING`);
  });

  it("has no import cycle between files", () => {
    const graph = graphOf(edges, (f) => f);
    assert.deepEqual(
      cyclesOf(graph).map((c) => describeCycle(graph, c)),
      [],
      "file cycles",
    );
  });

  it("src/h2/ imports nothing outside itself but node:buffer", () => {
    const outside: string[] = [];
    for (const file of sourceFiles().filter((f) => f.startsWith("h2/"))) {
      for (const specifier of specifiersOf(file)) {
        const to = resolveLocal(file, specifier);
        const ok = to === undefined ? specifier === "node:buffer" : to.startsWith("h2/");
        if (!ok) outside.push(`${file} imports ${specifier}`);
      }
    }
    assert.deepEqual(outside, []);
  });
});
