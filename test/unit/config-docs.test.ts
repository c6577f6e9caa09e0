/**
 * docs/configuration.md is generated from the config schema: the committed file must equal a fresh
 * generation, and the generator must cover every key the schema has (so a key added to the schema
 * appears in the reference without a change to the generator).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { buildConfigDocs, type SchemaNode } from "../../src/config/config-docs.js";
import { buildJsonSchema } from "../../src/config/config-json-schema.js";
import { repoRoot } from "../helpers/repo-root.js";

const ROOT = repoRoot();

/** Every key path of a JSON schema, as `clusters[].endpoints[].weight`. */
function keyPaths(node: SchemaNode, prefix = ""): string[] {
  const out: string[] = [];
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = prefix === "" ? key : `${prefix}.${key}`;
    out.push(path);
    out.push(...keyPaths(child, path));
    if (child.items !== undefined) out.push(...keyPaths(child.items, `${path}[]`));
  }
  return out;
}

describe("configuration reference", { timeout: 30_000 }, () => {
  it("docs/configuration.md is fresh (run `npm run docs:config` after changing the config schema)", () => {
    const committed = readFileSync(join(ROOT, "docs", "configuration.md"), "utf8");
    assert.ok(
      committed === buildConfigDocs(),
      "docs/configuration.md differs from the schema: run `npm run build && npm run docs:config`",
    );
  });

  it("has a row for every key of the schema, with its default", () => {
    const docs = buildConfigDocs();
    const paths = keyPaths(buildJsonSchema());
    assert.ok(paths.length > 40, `only ${paths.length} keys`);
    for (const path of paths) assert.ok(docs.includes(`| \`${path}\` |`), `no row for ${path}`);
    assert.match(docs, /\| `clusters\[\]\.health_check\.interval` \| duration \| {2}\| `2s` \|/);
  });

  it("follows a key added to the schema, with its type, allowed values and default", () => {
    const schema = buildJsonSchema() as SchemaNode;
    const clusters = schema.properties?.["clusters"]?.items;
    assert.ok(clusters?.properties !== undefined);
    clusters.properties["made_up"] = {
      type: "string",
      enum: ["a", "b"],
      default: "a",
      description: "a key only this test knows",
    };
    assert.match(
      buildConfigDocs(schema),
      /\| `clusters\[\]\.made_up` \| enum \| `a` \\\| `b` \| `a` \| a key only this test knows \|/,
    );
  });
});
