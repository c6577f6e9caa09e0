/**
 * fulcrum.schema.json is generated from the same source as validation: the committed file must equal
 * a fresh generation, and every example must validate against it (with an independent validator)
 * and load with the real loader.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse } from "yaml";
import { buildJsonSchema } from "../../src/config/config-json-schema.js";
import { loadConfigFile } from "../../src/config/config-load.js";
import { repoRoot } from "../helpers/repo-root.js";

const ROOT = repoRoot();

describe("json schema", { timeout: 10_000 }, () => {
  it("the committed fulcrum.schema.json is fresh (run `npm run schema` after changing the config)", () => {
    const committed = readFileSync(join(ROOT, "fulcrum.schema.json"), "utf8");
    assert.equal(committed, `${JSON.stringify(buildJsonSchema(), null, 2)}\n`);
  });

  const examples = readdirSync(join(ROOT, "examples")).filter((f) => f.endsWith(".yaml"));
  it("there are examples", () => assert.ok(examples.length >= 4));
  const validate = new Ajv2020({ allErrors: true, strict: false }).compile(buildJsonSchema());
  for (const f of examples) {
    it(`examples/${f} validates against the schema and loads`, () => {
      const doc: unknown = parse(readFileSync(join(ROOT, "examples", f), "utf8"));
      assert.ok(validate(doc), JSON.stringify(validate.errors));
      loadConfigFile(join(ROOT, "examples", f));
    });
  }

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
