/**
 * How a simulated worker is described to a person (the banners of `fulcrum sim` and `fulcrum demo`).
 * `speed` multiplies the service time, so 2 reads "2× slower", never "speed ×2".
 */

/** The kinds of simulated worker `fulcrum sim` starts. */
export type SimKind = "grpc" | "triton" | "torchserve" | "tcp" | "llm";

export interface SimDescription {
  readonly kind: SimKind;
  readonly name: string;
  readonly latencyMs?: number | undefined;
  readonly slots?: number | undefined;
  readonly speed?: number | undefined;
  readonly models?: readonly string[] | undefined;
}

/** "" for 1, "2× slower" for 2, "2× faster" for 0.5. */
export function speedLabel(speed: number): string {
  if (speed === 1) return "";
  const factor = speed > 1 ? speed : 1 / speed;
  const shown = Number.isInteger(factor) ? String(factor) : factor.toFixed(1);
  return `${shown}× ${speed > 1 ? "slower" : "faster"}`;
}

/** One line: what the worker serves and its service-time model. */
export function describeSim(d: SimDescription): string {
  if (d.kind === "tcp") return `greets each connection with "${d.name}", then echoes every byte`;
  const speed = d.speed ?? 1;
  const label = speedLabel(speed);
  const serviceMs = Math.round((d.latencyMs ?? 0) * speed * 10) / 10;
  if (d.kind === "llm") {
    return [
      "an LLM behind Triton's API (ModelInfer, decoupled ModelStreamInfer) with a prefix cache",
      `${serviceMs} ms per output token${label === "" ? "" : ` (${label})`}`,
      `${d.slots ?? "unlimited"} generating at once`,
      `model ${d.models?.[0] ?? "llm"}`,
    ].join(", ");
  }
  const parts = [
    {
      grpc: "fulcrum.sim.Worker/Infer answers with its name",
      triton: "Triton-shaped (inference.GRPCInferenceService)",
      torchserve: "TorchServe-shaped (InferenceAPIsService)",
    }[d.kind],
    `${serviceMs} ms per call${label === "" ? "" : ` (${label})`}`,
    `${d.slots ?? "unlimited"} at once`,
  ];
  if (d.models && d.kind !== "grpc") parts.push(`models ${d.models.join(", ")}`);
  return parts.join(", ");
}
