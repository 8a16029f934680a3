import type { PoolClient } from 'pg';
import type { HandlerContext, HandlerRegistry, Json, TaskHandler } from '@baton/actors';
import { InvalidArgumentError, TYPE_NAME } from '@baton/store';

/** What a handler receives: the run's context with a typed payload and the real transaction type. */
export interface TaskContext<P = Json> extends Omit<HandlerContext, 'payload' | 'onComplete'> {
  readonly payload: P;
  /**
   * Registers work to run inside the completion transaction (the caller's
   * effects then commit with the completion, at most once per task).
   *
   * @example
   * ctx.onComplete((tx) => tx.query('insert into receipts (order_id) values ($1)', [ctx.payload.orderId]));
   */
  onComplete(this: void, work: (tx: PoolClient) => Promise<unknown>): void;
}

export type HandlerFn<P = Json> = (ctx: TaskContext<P>) => Promise<Json | void> | Json | void;

export interface HandlerOptions {
  /** Most runs of this type at once on this node. @default the node's concurrency */
  readonly concurrency?: number;
  /** Aborts a run (its `signal`) after this long. @default the node's `worker.timeoutMs` */
  readonly timeoutMs?: number;
  /** Whether an error deserves a retry. @default all but errors with `retryable: false` */
  readonly retryable?: (error: unknown) => boolean;
}

/** The node's handlers by task type (seed 003's mux). */
export class Handlers implements HandlerRegistry {
  readonly #byType = new Map<string, TaskHandler>();
  #types: readonly string[] = [];

  constructor(private readonly defaultTimeoutMs: number) {}

  /**
   * Registers the handler of `type`.
   *
   * @example
   * handlers.add('email.send', async (ctx) => { await send(ctx.payload, { signal: ctx.signal }); });
   */
  add<P = Json>(type: string, fn: HandlerFn<P>, options: HandlerOptions = {}): void {
    if (typeof type !== 'string' || !TYPE_NAME.test(type)) {
      throw new InvalidArgumentError('type', `must match ${String(TYPE_NAME)}`, type);
    }
    if (typeof fn !== 'function')
      throw new InvalidArgumentError('handler', 'must be a function', fn);
    if (this.#byType.has(type)) {
      throw new InvalidArgumentError('type', `a handler for ${type} is already registered`, type);
    }
    const concurrency = options.concurrency;
    if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
      throw new InvalidArgumentError('concurrency', 'must be a positive integer', concurrency);
    }
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
      throw new InvalidArgumentError('timeoutMs', 'must be a positive integer', timeoutMs);
    }
    const handler: TaskHandler = {
      // Not async: the worker awaits the result (and turns a throw into a rejection).
      run: (ctx) => Promise.resolve(fn(ctx as unknown as TaskContext<P>)),
      timeoutMs,
      ...(concurrency !== undefined ? { concurrency } : {}),
      ...(options.retryable ? { retryable: options.retryable } : {}),
    };
    this.#byType.set(type, handler);
    this.#types = Object.freeze([...this.#byType.keys()]);
  }

  lookup(type: string): TaskHandler | undefined {
    return this.#byType.get(type);
  }

  types(): readonly string[] {
    return this.#types;
  }
}
