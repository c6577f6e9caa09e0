/**
 * Generates `fulcrum.schema.json` from the same zod schema that validates configs, so editors and
 * outside tools check configs against exactly what Fulcrum accepts. `npm run schema` writes it; a
 * test fails when the committed file is stale.
 */
import { pathToFileURL } from "node:url";
import { z } from "zod";
import { configSchema } from "./config-schema.js";

export function buildJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(configSchema, { io: "input", target: "draft-2020-12" }) as Record<
    string,
    unknown
  >;
  const { $schema, ...rest } = generated;
  return {
    $schema,
    $id: "fulcrum.schema.json",
    title: "Fulcrum configuration",
    description: "YAML config of the Fulcrum TCP / gRPC balancer; see examples/full-reference.yaml.",
    ...rest,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${JSON.stringify(buildJsonSchema(), null, 2)}\n`);
}
