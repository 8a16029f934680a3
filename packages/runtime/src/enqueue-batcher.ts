/**
 * Group commit for submissions: concurrent enqueues share one INSERT. The
 * first enqueue goes at once (no added latency); those that arrive while a
 * statement is in flight wait for it and go together in the next one. Each
 * input is validated on its own first, so one bad submission never fails
 * another; a database error fails only the batch it hit.
 */
import {
  isDataException,
  type DirectStart,
  type EnqueueInput,
  type EnqueueResult,
  type RunnableTask,
  type TaskStore,
} from '@baton/store';

/**
 * Direct starts: a submission this node can run at once is stored already
 * running on it (see TaskStore.enqueueAndStart), so it starts without a
 * claim. The node holds a worker slot for it before the write and hands the
 * stored task to the worker after the commit.
 */
export interface DirectStarts {
  /** This node, its lease and its queue. */
  readonly start: Omit<DirectStart, 'eligible'>;
  /** Holds a worker slot for `input` if the node can run it now: the slot's key. */
  reserve(input: EnqueueInput<unknown>): string | undefined;
  /** The task was stored running and leased to this node: run it. */
  started(key: string, task: RunnableTask): void;
  /** The slot is not needed (stored pending, a duplicate, or the write failed). */
  release(key: string): void;
}

/** What an enqueue through the batcher resolves to. */
export type BatchedEnqueueResult = EnqueueResult & {
  /** Stored running on this node (a direct start): no claim or wake-up is needed. */
  readonly started: boolean;
};

interface Pending {
  readonly input: EnqueueInput<unknown>;
  readonly resolve: (result: BatchedEnqueueResult) => void;
  readonly reject: (error: unknown) => void;
}

export class EnqueueBatcher {
  readonly #tasks: TaskStore;
  readonly #maxBatch: number;
  readonly #direct: DirectStarts | undefined;
  #queue: Pending[] = [];
  #flushing = false;

  /** @param maxBatch most tasks in one statement. @default 500 */
  constructor(tasks: TaskStore, options: { maxBatch?: number; direct?: DirectStarts } = {}) {
    this.#tasks = tasks;
    this.#maxBatch = options.maxBatch ?? 500;
    this.#direct = options.direct;
  }

  /** Validates at once (throws the typed error), then stores with whatever else is waiting. */
  enqueue(input: EnqueueInput<unknown>): Promise<BatchedEnqueueResult> {
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
        await this.#store(batch);
      }
    } finally {
      this.#flushing = false;
    }
  }

  async #store(batch: readonly Pending[]): Promise<void> {
    const inputs = batch.map((p) => p.input);
    const direct = this.#direct;
    const keys = direct ? inputs.map((input) => direct.reserve(input)) : [];
    const eligible = keys.map((k) => k !== undefined);
    try {
      if (!direct || !eligible.includes(true)) {
        const results = await this.#tasks.enqueueMany(inputs);
        batch.forEach((p, i) => p.resolve({ ...results[i]!, started: false }));
        return;
      }
      const results = await this.#tasks.enqueueAndStart(inputs, { ...direct.start, eligible });
      batch.forEach((p, i) => {
        const { id, duplicate, started } = results[i]!;
        const key = keys[i];
        // The run starts before the reply goes out: the commit is all it waits for.
        if (key !== undefined) {
          if (started) direct.started(key, started);
          else direct.release(key);
        }
        p.resolve({ id, duplicate, started: started !== null });
      });
    } catch (error) {
      for (const key of keys) if (key !== undefined) direct!.release(key);
      // A value PostgreSQL refused fails the statement, which wrote nothing:
      // each submission is tried on its own, so only the bad one fails.
      if (batch.length > 1 && isDataException(error)) {
        for (const p of batch) await this.#store([p]);
        return;
      }
      for (const p of batch) p.reject(error);
    }
  }
}
