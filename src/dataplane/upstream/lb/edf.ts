// Earliest-deadline-first scheduling over a fixed set of items: the binary heap behind weighted RR and LR.

/**
 * A min-heap of item indices ordered by (deadline, index). Items are 0..n-1 and never added or removed; the caller
 * picks `top()` and then gives it its next deadline with `replaceTop()`. No allocation after construction.
 */
export class EdfHeap {
  /** deadline[i] is item i's deadline; write it only through replaceTop() or before rebuild(). */
  readonly deadline: Float64Array;
  private readonly heap: Int32Array;

  constructor(readonly size: number) {
    this.deadline = new Float64Array(size);
    this.heap = new Int32Array(size);
  }

  /** Restores heap order after deadlines were set directly. O(n). */
  rebuild(): void {
    const n = this.size;
    for (let i = 0; i < n; i++) this.heap[i] = i;
    for (let i = (n >>> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  /** The item with the earliest deadline (lowest index among equals). */
  top(): number {
    return this.heap[0]!;
  }

  /** Moves the top item to `deadline` and restores heap order. O(log n). */
  replaceTop(deadline: number): void {
    this.deadline[this.heap[0]!] = deadline;
    this.siftDown(0);
  }

  /** Subtracts `by` from every deadline (keeps them small; order is preserved). O(n). */
  shift(by: number): void {
    const d = this.deadline;
    for (let i = 0; i < this.size; i++) d[i] = d[i]! - by;
    this.rebuild();
  }

  private before(a: number, b: number): boolean {
    const da = this.deadline[a]!;
    const db = this.deadline[b]!;
    return da < db || (da === db && a < b);
  }

  private siftDown(pos: number): void {
    const heap = this.heap;
    const n = this.size;
    const item = heap[pos]!;
    for (;;) {
      let child = 2 * pos + 1;
      if (child >= n) break;
      if (child + 1 < n && this.before(heap[child + 1]!, heap[child]!)) child++;
      if (!this.before(heap[child]!, item)) break;
      heap[pos] = heap[child]!;
      pos = child;
    }
    heap[pos] = item;
  }
}
