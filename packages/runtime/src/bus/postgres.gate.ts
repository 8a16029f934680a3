/**
 * The PostgreSQL bus's bound on the database work that receiving costs (a
 * claim per queue-group message, a read per body stored by reference):
 * at most `concurrency` such queries at once, at most `queue` more waiting.
 * Beyond that a message is dropped unread, as a slow NATS consumer's are: a
 * flood of messages must not take every connection of the pool the node's
 * worker shares (its lease extensions would wait behind it) nor grow memory
 * without bound. Bus messages are hints or requests that are retried.
 */
export class ReadGate {
  readonly #concurrency: number;
  readonly #queueLimit: number;
  readonly #waiting: (() => void)[] = [];
  #running = 0;
  #dropped = 0;

  constructor(concurrency: number, queue: number) {
    this.#concurrency = concurrency;
    this.#queueLimit = queue;
  }

  /** Messages dropped so far because the queue was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Runs `work` when a slot is free; `undefined` (and `work` never runs)
   * when the queue is full.
   */
  async run<T>(work: () => Promise<T>): Promise<T | undefined> {
    if (this.#running >= this.#concurrency) {
      if (this.#waiting.length >= this.#queueLimit) {
        this.#dropped += 1;
        return undefined;
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running += 1;
    }
    try {
      return await work();
    } finally {
      // The slot passes to the next waiter as is; otherwise it is freed.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running -= 1;
    }
  }
}
