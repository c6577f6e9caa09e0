/**
 * Generates `docs/configuration.md` from the JSON Schema that `config-json-schema.ts` derives from the zod
 * schema, so the reference lists exactly the keys, types, defaults and descriptions Fulcrum validates
 * against. Generic over the schema: a key added to `config-schema.ts` (with a `.describe()`) appears here
 * without touching this file. `npm run docs:config` writes the file; a unit test fails when it is stale.
 */
import { pathToFileURL } from "node:url";
import { buildJsonSchema } from "./config-json-schema.js";

/** The slice of JSON Schema (draft 2020-12, as zod emits it) that the reference reads. */
export type SchemaNode = {
  type?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  items?: SchemaNode;
  anyOf?: SchemaNode[];
};

/** One key of the reference: its dotted path and what the schema says about it. */
type Row = { path: string; node: SchemaNode; required: boolean };
/**
 * A group of rows: the keys directly inside one mapping (the root, or e.g. `clusters[].health_check`).
 * `optional`: the mapping itself may be left out, so its required keys are required only with it.
 */
type Section = { path: string; node: SchemaNode; rows: Row[]; optional: boolean };

/** Patterns of the config's value formats, named as the contract names them (unknown ones show as is). */
const FORMATS: Record<string, string> = {
  "^\\d+(ms|s|m|h)$": "duration",
  "^(0|\\d+(ms|s|m|h))$": "duration or 0",
  "^\\d+(B|KiB|MiB)$": "size",
  "^(\\[[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?\\]|[A-Za-z0-9_.-]+):\\d{1,5}$": "address",
};

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Markdown inline code that survives a table cell, with a fence longer than any backtick run inside. */
function code(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(longest + 1);
  const pad = longest > 0 ? " " : "";
  return `${fence}${pad}${text.replaceAll("|", "\\|")}${pad}${fence}`;
}

/** Prose in a table cell: pipes escaped, `<name>` shown rather than taken for an HTML tag. */
function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll("\n", " ");
}

/** A description as a sentence of its own, with a full stop. */
function sentence(text: string): string {
  const t = cell(text.trim());
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

function isObject(node: SchemaNode): boolean {
  return node.type === "object" || node.properties !== undefined;
}

function childPath(parent: string, key: string): string {
  return parent === "" ? key : `${parent}.${key}`;
}

/** Walks the schema depth first: one section per mapping, in the schema's key order. */
function sections(root: SchemaNode): Section[] {
  const out: Section[] = [];
  const visit = (path: string, node: SchemaNode, optional: boolean): void => {
    const section: Section = { path, node, rows: [], optional };
    out.push(section);
    const nested: [string, SchemaNode, boolean][] = [];
    const required = new Set(node.required ?? []);
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const p = childPath(path, key);
      const row: Row = { path: p, node: child, required: required.has(key) };
      section.rows.push(row);
      const absentable = !row.required && child.default === undefined;
      if (isObject(child)) nested.push([p, child, absentable]);
      else if (child.type === "array" && child.items !== undefined && isObject(child.items)) {
        nested.push([`${p}[]`, child.items, false]);
      }
    }
    for (const [p, child, absentable] of nested) visit(p, child, absentable);
  };
  visit("", root, false);
  return out;
}

function integerRange(node: SchemaNode): string {
  const min = node.minimum;
  const max = node.maximum === undefined || node.maximum >= MAX_SAFE ? undefined : node.maximum;
  if (min !== undefined && max !== undefined) return `${min}–${max}`;
  if (min !== undefined) return `≥ ${min}`;
  if (max !== undefined) return `≤ ${max}`;
  return "";
}

/** The type column: `integer`, `duration`, `list of address`, `mapping`, `integer or "auto"`. */
export function typeOf(node: SchemaNode): string {
  if (node.anyOf !== undefined) {
    // A constant that another alternative's pattern already admits (0 next to "duration or 0") adds nothing.
    const covered = (alt: SchemaNode): boolean =>
      alt.const !== undefined &&
      node.anyOf!.some((o) => o.pattern !== undefined && new RegExp(o.pattern).test(String(alt.const)));
    return [...new Set(node.anyOf.filter((alt) => !covered(alt)).map(typeOf))].join(" or ");
  }
  if (node.const !== undefined) return JSON.stringify(node.const);
  if (node.enum !== undefined) return "enum";
  if (isObject(node)) return "mapping";
  if (node.type === "array") {
    const item = node.items === undefined ? "any" : typeOf(node.items);
    return `list of ${item === "mapping" ? "mappings" : item}`;
  }
  if (node.type === "string" && node.pattern !== undefined) return FORMATS[node.pattern] ?? "string";
  return node.type ?? "any";
}

/** The allowed-values column: enum members, ranges, a pattern without a name, list length. */
export function allowedOf(node: SchemaNode): string {
  if (node.anyOf !== undefined) {
    return node.anyOf
      .map(allowedOf)
      .filter((a) => a !== "")
      .join("; ");
  }
  if (node.enum !== undefined) return node.enum.map((v) => code(String(v))).join(" \\| ");
  if (node.type === "integer" || node.type === "number") return integerRange(node);
  if (node.type === "array") {
    const parts = [node.minItems !== undefined ? `at least ${node.minItems}` : ""];
    if (node.items !== undefined && !isObject(node.items)) parts.push(allowedOf(node.items));
    return parts.filter((p) => p !== "").join("; ");
  }
  if (node.type === "string" && node.pattern !== undefined && FORMATS[node.pattern] === undefined) {
    return `matches ${code(node.pattern)}`;
  }
  return "";
}

/** The default column: the default as YAML would spell it, or whether the key is required. */
export function defaultOf(row: Row, within?: Section): string {
  const { node } = row;
  if (node.default !== undefined) {
    const d = node.default;
    if (typeof d === "object" && d !== null && !Array.isArray(d) && Object.keys(d).length === 0) {
      return "present, with the defaults below";
    }
    return code(typeof d === "string" && d !== "" ? d : JSON.stringify(d));
  }
  if (!row.required) return "absent";
  return within?.optional === true ? `**required** with ${code(within.path)}` : "**required**";
}

function sectionTitle(section: Section): string {
  return section.path === "" ? "Top level" : code(section.path);
}

function anchorNote(section: Section, all: Section[]): string {
  const inner = all.filter((s) => s !== section && s.path.startsWith(`${section.path}.`));
  const direct = inner.filter((s) => !s.path.slice(section.path.length + 1).includes("."));
  if (direct.length === 0) return "";
  return `Nested: ${direct.map((s) => code(s.path)).join(", ")}.\n\n`;
}

const HEADER = `# Configuration reference

<!-- Generated by \`npm run docs:config\` from src/config/config-schema.ts: do not edit by hand. -->

Fulcrum reads one YAML file (\`fulcrum --config FILE\`). Keys are snake_case; an unknown key, a bare
number where a duration or size is expected, or a value out of range is an error naming its dotted path,
for example \`clusters[0].health_check.interval: expected a duration like "2s", got 5\`, and every error is
reported at once. \`fulcrum check --config FILE\` validates a file and prints the resolved config (every
default filled in, secrets shown as \`"<redacted>"\`) as JSON.

This page is generated from the schema that validates configs; \`fulcrum.schema.json\` (the same schema as
JSON Schema) lets an editor's YAML language server check a file as you type, and
[examples/full-reference.yaml](../examples/full-reference.yaml) shows every key in one file. What the keys
do in practice: [architecture](architecture.md), [operations](operations.md), [inference](inference.md).

Value formats:

| type | form | examples |
|---|---|---|
| duration | \`<n>ms\`, \`<n>s\`, \`<n>m\`, \`<n>h\` (a string, never a bare number) | \`500ms\`, \`2s\`, \`10m\` |
| duration or 0 | a duration, or \`0\` (never) | \`0\`, \`10m\` |
| size | \`<n>B\`, \`<n>KiB\`, \`<n>MiB\` | \`16KiB\`, \`4MiB\` |
| address | \`host:port\` or \`[v6]:port\` | \`127.0.0.1:9901\`, \`[::1]:8001\`, \`triton.svc:8001\` |

Paths: \`listeners[].name\` means the key \`name\` of every entry of the list \`listeners\`; error messages
name the entry, as in \`listeners[0].name\`. Relative file paths (certificates, keys, CAs) are relative to
the config file. "absent" in the default column means the key may be left out and has no default value.

Checks beyond each key's own value:

- Every file the config names (\`listeners[].tls.cert\`, \`key\`, \`client_ca\`, \`clusters[].tls.ca\`) is read
  and parsed by \`check\`, \`run\` and every reload, and a key must match its certificate; a problem names
  the key and the absolute path tried: \`listeners[0].tls.cert: cannot read "/etc/fulcrum/tls.crt": no such
  file\`. \`check\` prints the resolved paths.
- \`listeners[].tls\` and \`clusters[].tls\` are for gRPC listeners only: a cluster that serves a
  \`protocol: tcp\` listener may not set \`tls\` (the TCP relay forwards bytes as they are, so TLS to the
  workers would silently not happen).
- \`admin.token: "replace-me"\`, the placeholder the image and examples/kubernetes.yaml ship, is refused
  unless \`admin.listen\` is a loopback address (127.0.0.0/8, \`[::1]\`, \`localhost\`).
- Names are unique: listeners, clusters, and endpoint \`name\`s within a cluster; a listener's
  \`cluster\` must name a cluster.
- An unknown key within two edits of a valid key at that place gets a suggestion:
  \`clusters[0].polcy: unknown key (did you mean "policy"?)\`.
`;

/** The whole of `docs/configuration.md`. */
export function buildConfigDocs(schema: SchemaNode = buildJsonSchema()): string {
  const all = sections(schema);
  const parts = [HEADER];
  for (const section of all) {
    parts.push(`\n## ${sectionTitle(section)}\n\n`);
    if (section.path !== "" && section.node.description !== undefined) {
      parts.push(`${sentence(section.node.description)}\n\n`);
    }
    parts.push(anchorNote(section, all));
    parts.push("| key | type | allowed values | default | description |\n|---|---|---|---|---|\n");
    for (const row of section.rows) {
      const columns = [code(row.path), typeOf(row.node), allowedOf(row.node), defaultOf(row, section)];
      columns.push(cell(row.node.description ?? ""));
      parts.push(`| ${columns.map((c) => c.replaceAll("\n", " ")).join(" | ")} |\n`);
    }
  }
  return parts.join("");
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(buildConfigDocs());
}
