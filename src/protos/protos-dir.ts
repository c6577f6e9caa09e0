/**
 * Where the package's `.proto` files are and how they are decoded: one place for the probers
 * (health/), the simulated workers (sim/), `fulcrum call` and the tests, so none of them imports the
 * proto loading of another. The folder is found upward from this compiled file, so it works from
 * src/ and dist/src/.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/** Decoding as the simulated workers and probers expect it: field names as written, int64 as strings. */
export const LOAD_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The package's `protos/` folder. */
export function protosDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("protos/: no package.json above " + fileURLToPath(import.meta.url));
    dir = up;
  }
  return join(dir, "protos");
}

/** Loads `relative` (a path under `protos/`) as a grpc-js package object. */
export function loadProto(relative: string, options: protoLoader.Options = LOAD_OPTIONS): unknown {
  const definition = protoLoader.loadSync(join(protosDir(), relative), options);
  return grpc.loadPackageDefinition(definition);
}
