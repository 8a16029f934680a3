/**
 * Group commit for submissions: concurrent enqueues share one INSERT. The
 * first enqueue goes at once (no added latency); those that arrive while a
 * statement is in flight wait for it and go together in the next one. Each
 * input is validated on its own first, so one bad submission never fails
 * another; a database error fails only the batch it hit.
 */
import type { EnqueueInput, EnqueueResult, TaskStore } from '@baton/store';

interface Pending {
  readonly input: EnqueueInput<unknown>;
  readonly resolve: (result: EnqueueResult) => void;
  readonly reject: (error: unknown) => void;
}

export class EnqueueBatcher {
  readonly #tasks: TaskStore;
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  #flushing = false;

  /** @param maxBatch most tasks in one statement. @default 500 */
  constructor(tasks: TaskStore, maxBatch = 500) {
    this.#tasks = tasks;
    this.#maxBatch = maxBatch;
  }

  /** Validates at once (throws the typed error), then stores with whatever else is waiting. */
  enqueue(input: EnqueueInput<unknown>): Promise<EnqueueResult> {
    this.#tasks.validate(input);
    return new Promise((resolve, reject) => {
      this.#queue.push({ input, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#maxBatch);
        try {
          const results = await this.#tasks.enqueueMany(batch.map((p) => p.input));
          batch.forEach((p, i) => p.resolve(results[i]!));
        } catch (error) {
          for (const p of batch) p.reject(error);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }
}
