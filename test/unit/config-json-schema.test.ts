/**
 * fulcrum.schema.json is generated from the same source as validation: the committed file must equal
 * a fresh generation, and every example must validate against it (with an independent validator)
 * and load with the real loader.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse } from "yaml";
import { buildJsonSchema } from "../../src/config/config-json-schema.js";
import { ConfigError } from "../../src/config/config-error.js";
import { namedFiles } from "../../src/config/config-files.js";
import { loadConfigFile } from "../../src/config/config-load.js";
import { runnableExample } from "../helpers/examples.js";
import { makeTestCerts } from "../helpers/grpc-certs.js";
import { repoRoot } from "../helpers/repo-root.js";

const ROOT = repoRoot();

describe("json schema", { timeout: 30_000 }, () => {
  it("the committed fulcrum.schema.json is fresh (run `npm run schema` after changing the config)", () => {
    const committed = readFileSync(join(ROOT, "fulcrum.schema.json"), "utf8");
    assert.equal(committed, `${JSON.stringify(buildJsonSchema(), null, 2)}\n`);
  });

  const examples = readdirSync(join(ROOT, "examples")).filter((f) => f.endsWith(".yaml"));
  it("there are examples", () => assert.ok(examples.length >= 4));
  const validate = new Ajv2020({ allErrors: true, strict: false }).compile(buildJsonSchema());
  const certs = makeTestCerts();
  const dir = mkdtempSync(join(tmpdir(), "fulcrum-examples-"));
  after(() => {
    certs.remove();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const f of examples) {
    it(`examples/${f} validates against the schema and loads (with its files and a real token)`, () => {
      const doc: unknown = parse(readFileSync(join(ROOT, "examples", f), "utf8"));
      assert.ok(validate(doc), JSON.stringify(validate.errors));
      loadConfigFile(runnableExample(f, dir, certs));
      // As shipped, the only complaints are the files it names (not in the repository) and the
      // placeholder admin token.
      const allowed = new Set([...namedFiles(doc).map((n) => n.path.join(".")), "admin.token"]);
      try {
        loadConfigFile(join(ROOT, "examples", f));
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        for (const i of err.issues) assert.ok(allowed.has(i.path.replace(/\[(\d+)\]/g, ".$1")), i.path);
      }
    });
  }

  it("examples/full-reference.yaml shows every key of the schema", () => {
    const shown = keyPaths(parse(readFileSync(join(ROOT, "examples", "full-reference.yaml"), "utf8")));
    const missing = schemaKeyPaths(buildJsonSchema()).filter((p) => !shown.has(p));
    assert.deepEqual(missing, []);
  });

  it("the schema rejects what the loader rejects: an unknown key and a bare-number duration", () => {
    assert.equal(validate({ listeners: [], clusters: [], bogus: 1 }), false);
    assert.equal(
      validate({
        drain_timeout: 5,
        listeners: [{ name: "a", protocol: "tcp", listen: "127.0.0.1:1", cluster: "c" }],
        clusters: [{ name: "c", endpoints: [{ address: "127.0.0.1:2" }] }],
      }),
      false,
    );
  });
});

type JsonSchema = {
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
};

/** Every key a config may hold, as `clusters[].endpoints[].weight`. */
function schemaKeyPaths(schema: JsonSchema, prefix = ""): string[] {
  const out: string[] = [];
  for (const [key, sub] of Object.entries(schema.properties ?? {})) {
    const path = prefix === "" ? key : `${prefix}.${key}`;
    out.push(path, ...schemaKeyPaths(sub, path));
  }
  if (schema.items) out.push(...schemaKeyPaths(schema.items, `${prefix}[]`));
  for (const alt of schema.anyOf ?? []) out.push(...schemaKeyPaths(alt, prefix));
  return out;
}

/** Every key present in a parsed YAML document, in the same notation. */
function keyPaths(value: unknown, prefix = "", out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) keyPaths(v, `${prefix}[]`, out);
  else if (typeof value === "object" && value !== null)
    for (const [key, v] of Object.entries(value)) {
      const path = prefix === "" ? key : `${prefix}.${key}`;
      out.add(path);
      keyPaths(v, path, out);
    }
  return out;
}
