/**
 * A fan-out stream of events: every subscriber gets its own async iterator (queued,
 * never dropping), like nats.js's QueuedIterator. Used for target changes and
 * membership changes, which the assignment publisher consumes.
 */

/** An async iterator over a feed that can be stopped from outside the loop. */
export interface Subscription<T> extends AsyncIterableIterator<T> {
  /** Ends the iteration (a pending `next()` resolves as done). */
  stop(): void;
}

/** A multi-subscriber event stream. */
export class Feed<T> {
  private readonly subs = new Set<Queue<T>>();
  private closed = false;

  /** Delivers `event` to every current subscriber. */
  push(event: T): void {
    for (const q of this.subs) q.push(event);
  }

  /** Subscribes; events pushed from now on are delivered in order. */
  subscribe(): Subscription<T> {
    const q = new Queue<T>(() => this.subs.delete(q));
    if (this.closed) q.stop();
    else this.subs.add(q);
    return q;
  }

  /** Ends every subscription (after queued events are consumed). */
  close(): void {
    this.closed = true;
    for (const q of this.subs) q.stop();
    this.subs.clear();
  }
}

class Queue<T> implements Subscription<T> {
  private readonly items: T[] = [];
  private waiter: ((r: IteratorResult<T>) => void) | undefined;
  private done = false;

  constructor(private readonly onStop: () => void) {}

  push(v: T): void {
    if (this.done) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: v, done: false });
    } else this.items.push(v);
  }

  stop(): void {
    if (this.done) return;
    this.done = true;
    this.onStop();
    if (this.waiter && this.items.length === 0) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    const v = this.items.shift();
    if (v !== undefined) return Promise.resolve({ value: v, done: false });
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiter = resolve));
  }

  return(): Promise<IteratorResult<T>> {
    this.stop();
    this.items.length = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
