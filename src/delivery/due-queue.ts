/**
 * The worker's schedule: jobs waiting for their next attempt, ordered by
 * when they are due, and jobs already due, ordered oldest first (a job
 * leaves the backlog in the order it came). Every operation is O(log N):
 * the backlog's size never makes scheduling slower.
 */

interface Item {
  id: string;
  /** Epoch ms when the job may run. */
  due: number;
  /** Its acceptance order (smaller: older). */
  age: number;
  /** Bumped on every set(): entries of an older version are stale and skipped. */
  version: number;
}

class Heap<T> {
  private readonly items: T[] = [];
  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(a[i]!, a[parent]!)) break;
      [a[i], a[parent]] = [a[parent]!, a[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.before(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

export class DueQueue {
  private readonly current = new Map<string, Item>();
  private readonly waiting = new Heap<Item>((a, b) => a.due < b.due);
  private readonly ready = new Heap<Item>((a, b) => a.age < b.age);

  get size(): number {
    return this.current.size;
  }

  has(id: string): boolean {
    return this.current.has(id);
  }

  /** Schedules (or reschedules) a job. */
  set(id: string, due: number, age: number): void {
    const version = (this.current.get(id)?.version ?? 0) + 1;
    const item = { id, due, age, version };
    this.current.set(id, item);
    this.waiting.push(item);
  }

  delete(id: string): void {
    this.current.delete(id);
  }

  /** The oldest job due at `now` that `accept` takes, removed from the schedule; others stay. */
  take(now: number, accept: (id: string) => boolean = () => true): string | undefined {
    this.promote(now);
    const skipped: Item[] = [];
    let taken: string | undefined;
    while (this.ready.size > 0) {
      const item = this.ready.pop()!;
      if (this.current.get(item.id) !== item) continue;
      if (accept(item.id)) {
        this.current.delete(item.id);
        taken = item.id;
        break;
      }
      skipped.push(item);
    }
    for (const item of skipped) this.ready.push(item);
    return taken;
  }

  /** When the next waiting job comes due (epoch ms), or undefined when none waits. */
  nextDue(): number | undefined {
    for (;;) {
      const head = this.waiting.peek();
      if (!head) return undefined;
      if (this.current.get(head.id) === head) return head.due;
      this.waiting.pop();
    }
  }

  private promote(now: number): void {
    for (;;) {
      const head = this.waiting.peek();
      if (!head || head.due > now) return;
      this.waiting.pop();
      if (this.current.get(head.id) === head) this.ready.push(head);
    }
  }
}
