/**
 * The child's side of the JSON-lines protocol of child-channel.ts: print events, answer commands read
 * from stdin, and exit when stdin closes (the test that started the child is gone).
 */
import { createInterface } from "node:readline";

export type Command = { readonly cmd: string; readonly id: number } & Record<string, unknown>;
export type Handler = (command: Command) => Promise<Record<string, unknown>> | Record<string, unknown>;

/** Prints one protocol line (stdout to a pipe is synchronous on Linux, so lines never interleave). */
export function emit(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

export function serveCommands(handlers: Readonly<Record<string, Handler>>): void {
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    let command: Command;
    try {
      command = JSON.parse(line) as Command;
    } catch {
      return;
    }
    const handler = handlers[command.cmd];
    if (!handler) {
      emit({ reply: command.id, error: `unknown command ${JSON.stringify(command.cmd)}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(command))
      .then(
        (result) => emit({ ...result, reply: command.id }),
        (err: unknown) =>
          emit({ reply: command.id, error: err instanceof Error ? err.message : String(err) }),
      );
  });
  lines.once("close", () => process.exit(0));
}
