/**
 * `grpc.health.v1.Health` (protos/health.proto, grpc/grpc doc/health-checking.md), loaded once per
 * process: the grpc prober calls it and the simulated workers serve it, from one schema.
 */
import type * as grpc from "@grpc/grpc-js";
import { loadProto } from "./protos-dir.js";

let healthConstructor: grpc.ServiceClientConstructor | undefined;

/**
 * The `grpc.health.v1.Health` client constructor. Its `.service` is the server-side definition the
 * simulated workers implement.
 */
export function healthService(): grpc.ServiceClientConstructor {
  if (healthConstructor) return healthConstructor;
  const loaded = loadProto("health.proto", { keepCase: true, enums: String, defaults: true }) as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  healthConstructor = loaded.grpc.health.v1.Health;
  return healthConstructor;
}
