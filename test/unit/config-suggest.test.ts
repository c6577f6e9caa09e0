/**
 * "Did you mean": an unknown key within edit distance 2 of a valid key at the same place gets that
 * key as a suggestion; nothing close, no suggestion. The distance itself, then whole configs.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError } from "../../src/config/config-error.js";
import { parseConfig } from "../../src/config/config-load.js";
import { configSchema } from "../../src/config/config-schema.js";
import { closestKey, editDistance, keysAt } from "../../src/config/config-suggest.js";

const CONFIG = `
admin: { listen: "127.0.0.1:0" }
listeners:
  - { name: g, protocol: grpc, listen: "127.0.0.1:8001", cluster: c }
clusters:
  - name: c
    health_check: { type: tcp }
    endpoints: [{ address: "127.0.0.1:8101" }]
`;

function errorsOf(yaml: string): string[] {
  try {
    parseConfig(yaml, { baseDir: "/" });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail("expected a ConfigError");
}

describe("config suggestions", { timeout: 30_000 }, () => {
  const distances: [string, string, number][] = [
    ["policy", "policy", 0],
    ["polcy", "policy", 1],
    ["wieght", "weight", 1],
    ["endpiont", "endpoints", 2],
    ["lisen", "listen", 1],
    ["threds", "threads", 1],
    ["abc", "", 3],
    ["", "abc", 3],
    ["colour", "policy", 4],
    ["ca", "ac", 1],
  ];
  for (const [a, b, d] of distances)
    it(`editDistance(${JSON.stringify(a)}, ${JSON.stringify(b)}) = ${d}`, () => {
      assert.equal(editDistance(a, b), d);
      assert.equal(editDistance(b, a), d, "symmetric");
    });

  const closest: [string, string[], string | undefined][] = [
    ["polcy", ["name", "policy", "affinity"], "policy"],
    ["policyy", ["policy"], "policy"],
    ["plicyy", ["policy"], "policy"],
    ["plcyy", ["policy"], undefined],
    ["x", ["ca"], undefined],
    ["cb", ["ca", "cab"], "ca"],
    ["tken", ["listen", "token"], "token"],
    ["intervall", ["interval", "internal"], "interval"],
    ["bogus", ["name", "policy"], undefined],
  ];
  for (const [word, candidates, want] of closest)
    it(`closestKey(${JSON.stringify(word)}) among ${candidates.join(",")} = ${String(want)}`, () => {
      assert.equal(closestKey(word, candidates), want);
    });

  it("keysAt walks the schema through lists and optional blocks", () => {
    assert.deepEqual(keysAt(configSchema, []), [
      "admin",
      "log",
      "threads",
      "drain_timeout",
      "listeners",
      "clusters",
    ]);
    assert.ok(keysAt(configSchema, ["clusters", 0]).includes("policy"));
    assert.deepEqual(keysAt(configSchema, ["clusters", 0, "endpoints", 3]).slice(0, 2), [
      "address",
      "weight",
    ]);
    assert.ok(keysAt(configSchema, ["clusters", 0, "health_check"]).includes("interval"));
    assert.deepEqual(keysAt(configSchema, ["clusters", 0, "policy"]), []);
    assert.deepEqual(keysAt(configSchema, ["nowhere"]), []);
  });

  const configs: { name: string; yaml: string; errors: string[] }[] = [
    {
      name: "a cluster key",
      yaml: CONFIG.replace("  - name: c\n", "  - name: c\n    polcy: p2c\n"),
      errors: ['clusters[0].polcy: unknown key (did you mean "policy"?)'],
    },
    {
      name: "a top-level key",
      yaml: `threds: 2\n${CONFIG}`,
      errors: ['threds: unknown key (did you mean "threads"?)'],
    },
    {
      name: "a listener key",
      yaml: CONFIG.replace('listen: "127.0.0.1:8001"', 'lisen: "127.0.0.1:8001"'),
      errors: ["listeners[0].listen: required", 'listeners[0].lisen: unknown key (did you mean "listen"?)'],
    },
    {
      name: "a key in an optional block",
      yaml: CONFIG.replace("{ type: tcp }", "{ type: tcp, intervl: 2s }"),
      errors: ['clusters[0].health_check.intervl: unknown key (did you mean "interval"?)'],
    },
    {
      name: "an endpoint key",
      yaml: CONFIG.replace('{ address: "127.0.0.1:8101" }', '{ address: "127.0.0.1:8101", wieght: 2 }'),
      errors: ['clusters[0].endpoints[0].wieght: unknown key (did you mean "weight"?)'],
    },
    {
      name: "an admin key",
      yaml: CONFIG.replace('listen: "127.0.0.1:0" }', 'listen: "127.0.0.1:0", tokn: x }'),
      errors: ['admin.tokn: unknown key (did you mean "token"?)'],
    },
    {
      name: "nothing close",
      yaml: CONFIG.replace("  - name: c\n", "  - name: c\n    colour: blue\n"),
      errors: ["clusters[0].colour: unknown key"],
    },
    {
      name: "close to a key of another place only",
      yaml: CONFIG.replace("  - name: c\n", "  - name: c\n    adress: x\n"),
      errors: ["clusters[0].adress: unknown key"],
    },
  ];
  for (const c of configs)
    it(`a misspelt ${c.name}`, () => {
      assert.deepEqual(errorsOf(c.yaml), c.errors);
    });
});
