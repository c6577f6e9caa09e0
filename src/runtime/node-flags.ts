/**
 * The V8 flags Fulcrum runs with, wherever it is launched: the `fulcrum` bin's shebang, `npm start`,
 * the container's ENTRYPOINT, the tests and the bench (a unit test keeps them in step).
 *
 * A young generation of a fixed size. By default V8 starts each semi-space at 1 MiB, grows it to
 * 16 MiB under a proxy's allocation rate, and shrinks it again at a memory-reducing full GC, so RSS
 * climbs for minutes, drops by tens of MiB at the first full GC and climbs back. Fixed 8 MiB
 * semi-spaces make the ceiling the starting point: RSS reaches its steady level within seconds of
 * load and stays there (`npm run soak`), and a young generation that fits the CPU's caches costs no
 * more per RPC or connection than the default (bench/RESULTS.md, "Fixed young generation").
 *
 * These flags cannot be set after start (`v8.setFlagsFromString` does not resize a heap that exists)
 * and Node refuses `--min-semi-space-size` in NODE_OPTIONS, so they go on the command line.
 */
export const SEMI_SPACE_MIB = 8;

export const NODE_FLAGS: readonly string[] = [
  `--min-semi-space-size=${SEMI_SPACE_MIB}`,
  `--max-semi-space-size=${SEMI_SPACE_MIB}`,
];
