/**
 * The V8 flags Fulcrum runs with, wherever it is launched: the `fulcrum` bin's shebang, `npm start`,
 * the container's ENTRYPOINT, the tests and the bench (a unit test keeps them in step).
 *
 * A young generation of a fixed size. By default V8 starts each semi-space at 1 MiB, grows it to
 * 16 MiB under a proxy's allocation rate and shrinks it again at its first full GC, after which it
 * regrows: RSS drops by 20–25 MiB a minute or two into a load and climbs back to its ceiling over
 * the next minute, which a leak check cannot tell from growth. With fixed 8 MiB semi-spaces only the
 * old generation moves (a dip of about 14 MiB at the first full GC, back within a minute), RSS stays
 * 15–35 MiB lower (`npm run soak`, docs/reliability.md "Soak"), and the CPU per RPC or connection is the
 * default's within what the bench can resolve (bench/RESULTS.md, "Fixed young generation").
 *
 * These flags cannot be set after start (`v8.setFlagsFromString` does not resize a heap that exists)
 * and Node refuses `--min-semi-space-size` in NODE_OPTIONS, so they go on the command line.
 */
export const SEMI_SPACE_MIB = 8;

export const NODE_FLAGS: readonly string[] = [
  `--min-semi-space-size=${SEMI_SPACE_MIB}`,
  `--max-semi-space-size=${SEMI_SPACE_MIB}`,
];
