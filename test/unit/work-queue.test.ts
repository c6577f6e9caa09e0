/**
 * The cluster queue of src/cluster/work-queue.ts without sockets: the order calls are bound in
 * (priority, flows in turn, FIFO), pinned lines, eviction, refusals, timeouts and leaving.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Endpoint } from "../../src/balancer/endpoint-set.js";
import { WorkQueue, priorityOf, type QueuedCall, type ShedReason } from "../../src/cluster/work-queue.js";

/** A test call: binds while `slots.free > 0` (and only on its pinned endpoint when pinned). */
class Call implements QueuedCall {
  shedWith: ShedReason | undefined;
  constructor(
    readonly label: string,
    private readonly log: string[],
    private readonly slots: { free: number; on?: Endpoint | undefined },
    private readonly pinned?: Endpoint,
  ) {}
  bind(): boolean {
    if (this.slots.free <= 0) return false;
    if (this.pinned && this.slots.on !== this.pinned) return false;
    this.slots.free--;
    this.log.push(this.label);
    return true;
  }
  shed(reason: ShedReason): void {
    this.shedWith = reason;
  }
}

const endpoint = (address: string): Endpoint =>
  ({ address, host: "127.0.0.1", port: 1, slot: 0, weight: 1, health: "healthy" }) as unknown as Endpoint;

function queue(maxSize = 100, timeoutMs = 60_000) {
  const shed: ShedReason[] = [];
  const depth = new Map<number, number>();
  const q = new WorkQueue(
    { maxSize, timeoutMs },
    {
      depthChanged: (p, d) => depth.set(p, (depth.get(p) ?? 0) + d),
      waited: () => undefined,
      shed: (r) => shed.push(r),
    },
  );
  return { q, shed, depth };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("work queue", { timeout: 10_000 }, () => {
  it("binds by priority, flows in turn within a priority, FIFO within a flow", async () => {
    const { q } = queue();
    const log: string[] = [];
    const slots = { free: 0 };
    const add = (label: string, priority: number, flow: string) =>
      q.offer(new Call(label, log, slots), priority, flow, undefined);
    add("p10-a1", 10, "a");
    add("p10-a2", 10, "a");
    add("p10-b1", 10, "b");
    add("p0-a1", 0, "a");
    add("p10-b2", 10, "b");
    add("p10-a3", 10, "a");
    add("p5-c1", 5, "c");
    assert.equal(q.size, 7);
    slots.free = 7;
    q.slotFreed(endpoint("x"));
    await settle();
    assert.deepEqual(log, ["p0-a1", "p5-c1", "p10-a1", "p10-b1", "p10-a2", "p10-b2", "p10-a3"]);
    assert.equal(q.size, 0);
  });

  it("stops binding when no slot is left, and goes on at the next free slot", async () => {
    const { q } = queue();
    const log: string[] = [];
    const slots = { free: 0 };
    for (const l of ["1", "2", "3"]) q.offer(new Call(l, log, slots), 0, "", undefined);
    slots.free = 1;
    q.slotFreed(endpoint("x"));
    await settle();
    assert.deepEqual(log, ["1"]);
    slots.free = 2;
    q.slotFreed(endpoint("x"));
    await settle();
    assert.deepEqual(log, ["1", "2", "3"]);
  });

  it("a pinned call waits for its own endpoint and goes first there", async () => {
    const { q } = queue();
    const log: string[] = [];
    const a = endpoint("a");
    const b = endpoint("b");
    const slots: { free: number; on?: Endpoint } = { free: 0 };
    q.offer(new Call("any", log, slots), 0, "", undefined);
    q.offer(new Call("pinned-a", log, slots, a), 10, "", a);
    slots.free = 1;
    slots.on = b;
    q.slotFreed(b);
    await settle();
    assert.deepEqual(log, ["any"]);
    slots.free = 1;
    slots.on = a;
    q.slotFreed(a);
    await settle();
    assert.deepEqual(log, ["any", "pinned-a"]);
    assert.equal(q.size, 0);
  });

  it("full: a better priority evicts the newest of the worst; otherwise the new call is refused", () => {
    const { q, shed } = queue(2);
    const log: string[] = [];
    const slots = { free: 0 };
    const old10 = new Call("old10", log, slots);
    const new10 = new Call("new10", log, slots);
    q.offer(old10, 10, "", undefined);
    q.offer(new10, 10, "", undefined);
    assert.equal(q.offer(new Call("also10", log, slots), 10, "", undefined), "queue_full");
    assert.equal(q.offer(new Call("worse", log, slots), 20, "", undefined), "queue_full");
    assert.notEqual(typeof q.offer(new Call("urgent", log, slots), 1, "", undefined), "string");
    assert.equal(new10.shedWith, "evicted");
    assert.equal(old10.shedWith, undefined);
    assert.equal(q.size, 2);
    assert.deepEqual(shed, ["queue_full", "queue_full", "evicted"]);
  });

  it("negative priorities never queue; max_size 0 is no queue", () => {
    const { q } = queue();
    assert.equal(q.offer(new Call("s", [], { free: 0 }), -1, "", undefined), "sheddable");
    const none = queue(0).q;
    assert.equal(none.offer(new Call("n", [], { free: 0 }), 0, "", undefined), "no_queue");
  });

  it("a call times out after queue.timeout, or leaves on its own, and is then never bound", async () => {
    const { q, depth } = queue(10, 20);
    const log: string[] = [];
    const slots = { free: 0 };
    const waits = new Call("times-out", log, slots);
    q.offer(waits, 3, "", undefined);
    const leaves = new Call("leaves", log, slots);
    const entry = q.offer(leaves, 3, "", undefined);
    assert.notEqual(typeof entry, "string");
    if (typeof entry !== "string") q.leave(entry);
    assert.equal(q.size, 1);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(waits.shedWith, "queue_timeout");
    assert.equal(q.size, 0);
    assert.equal(depth.get(3), 0);
    slots.free = 5;
    q.slotFreed(endpoint("x"));
    await settle();
    assert.deepEqual(log, []);
  });

  it("reads a priority header as a clamped integer, 0 when absent or not a number", () => {
    assert.equal(priorityOf(undefined), 0);
    assert.equal(priorityOf("7"), 7);
    assert.equal(priorityOf(" -3 "), -3);
    assert.equal(priorityOf("1e3"), 0);
    assert.equal(priorityOf("high"), 0);
    assert.equal(priorityOf("100000"), 100);
    assert.equal(priorityOf("-100000"), -100);
  });
});
