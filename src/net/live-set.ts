/**
 * An unordered set of live objects (open connections) in a dense array: add and delete are O(1)
 * through the position each member keeps, and nothing of a deleted member stays reachable.
 *
 * Why not a Set or Map for objects that come and go thousands of times a second: V8 links a
 * rehashed hash table to its successor and leaves the old entries in place, so one replaced table
 * that reached the old generation keeps every later table, and every member they held, alive
 * through young-generation collections (see frames-stream-table.ts for the measurement). Measured
 * here under the bench's new-connection-per-request load: 8–10 % of young allocation survived each
 * scavenge with the TCP listener's Map of connections.
 */
export interface LiveSetMember {
  /** Position in the set's array; -1 when not in a set. */
  liveIndex: number;
}

export class LiveSet<T extends LiveSetMember> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  add(item: T): void {
    if (item.liveIndex >= 0) return;
    item.liveIndex = this.items.length;
    this.items.push(item);
  }

  /** Removes `item`; false when it was not in the set. */
  delete(item: T): boolean {
    const i = item.liveIndex;
    if (i < 0 || this.items[i] !== item) return false;
    const last = this.items.pop() as T;
    if (last !== item) {
      this.items[i] = last;
      last.liveIndex = i;
    }
    item.liveIndex = -1;
    return true;
  }

  /** A copy of the members (safe to iterate while members leave). */
  values(): T[] {
    return this.items.slice();
  }
}
