/**
 * One run: a handler executing one attempt of one task, spawned by the worker.
 *
 * It owns the run's AbortController, its timeout, its lease extensions
 * (every lease/3; a failed one is retried after a short backoff, and a lease
 * that runs out with none succeeding ends the run as lost) and the write that
 * ends it (fail, finishCancelled, or a completion with transaction work),
 * retried a few times on store errors.
 * It ends by sending `RUN.SETTLED` to the worker; plain successes are
 * completed by the worker in batches.
 *
 * A run may also adopt a handler the worker already started inline (see
 * worker.lane.ts): it then awaits that promise with that AbortController,
 * and its timers count the time already spent (`elapsedMs`).
 */
import { assign, fromPromise, sendParent, setup } from 'xstate';
import {
  RunAbortedError,
  type AbortReason,
  type AttemptRef,
  type ClaimedTask,
  type CompletionWork,
  type FailOutcome,
  type FailRequest,
  type HandlerContext,
  type Json,
  type LeaseOutcome,
  type Logger,
  type StorePort,
  type TaskHandler,
  type WriteOutcome,
} from './ports.js';
import { LazyAbortController } from './abort.js';
import { NEVER_MS, exponentialMs, messageOf } from './options.js';
import { describeError, HandlerNotFoundError, isRetryable, RunTimeoutError } from './run.errors.js';

/** How a run ended, as reported to the worker. */
export type RunOutcome =
  /** The handler returned; the worker completes it in a batch. */
  | { readonly kind: 'succeeded'; readonly result: Json }
  /** Completed on its own, with the handler's transaction work. */
  | { readonly kind: 'completed' }
  /** `store.fail` recorded it: `retry` or `dead_letter`. */
  | {
      readonly kind: 'failed';
      readonly status: 'retry' | 'dead_letter';
      readonly timedOut: boolean;
    }
  | { readonly kind: 'cancelled' }
  /** A write was refused: the attempt is no longer ours. */
  | { readonly kind: 'stale' }
  /** Aborted by a drain; the worker releases it. */
  | { readonly kind: 'abandoned' }
  /** The final write failed after its retries; the lease will expire and the task be rescued. */
  | { readonly kind: 'write_failed'; readonly error: string };

/** The event a run sends to its worker when it ends. */
export interface RunSettledEvent {
  readonly type: 'RUN.SETTLED';
  readonly ref: AttemptRef;
  readonly taskType: string;
  readonly outcome: RunOutcome;
}

/** A handler the worker started inline, handed over to a run actor. */
export interface AdoptedRun {
  readonly promise: Promise<Json>;
  readonly controller: LazyAbortController;
  /** Transaction work the handler registered before the hand-over. */
  readonly work: CompletionWork | undefined;
  /** Time since the handler started, on the actor system's clock. */
  readonly elapsedMs: number;
  /** Time since its lease was last extended (or, if never, since the handler started). */
  readonly leaseElapsedMs: number;
}

export interface RunInput {
  readonly task: ClaimedTask;
  /** A handler already started by the worker: awaited instead of calling the handler. */
  readonly adopted?: AdoptedRun;
  readonly handler: TaskHandler | undefined;
  readonly store: StorePort;
  readonly logger: Logger;
  readonly leaseMs: number;
  readonly timeoutMs: number | undefined;
  readonly writeAttempts: number;
  readonly writeRetryMs: number;
}

type Write =
  | { readonly kind: 'fail'; readonly request: FailRequest; readonly timedOut: boolean }
  | { readonly kind: 'cancel' }
  | { readonly kind: 'complete'; readonly result: Json; readonly work: CompletionWork };

interface RunContext extends RunInput {
  readonly ref: AttemptRef;
  readonly controller: LazyAbortController;
  /** Time already spent before this actor (an adopted run): its timeout counts it. */
  readonly elapsedMs: number;
  /** Time the lease had already run when this actor took over; 0 after each successful extension. */
  leaseElapsedMs: number;
  /** Lease extensions failed in a row (store errors), since the last one that succeeded. */
  extendFailures: number;
  work: CompletionWork | undefined;
  write: Write | undefined;
  writeTries: number;
  outcome: RunOutcome | undefined;
}

export type RunEvent =
  | { type: 'CANCEL' }
  | { type: 'ABORT' }
  | { type: 'LEASE.RESULT'; outcome: LeaseOutcome }
  | { type: 'WORK'; work: CompletionWork };

function failWrite(ctx: RunContext, error: unknown, timedOut: boolean): Write {
  return {
    kind: 'fail',
    timedOut,
    request: {
      ...ctx.ref,
      error: describeError(error),
      retryable: timedOut || isRetryable(ctx.handler, error),
    },
  };
}

function abort(ctx: RunContext, reason: AbortReason): void {
  if (!ctx.controller.aborted) ctx.controller.abort(new RunAbortedError(reason, ctx.ref));
}

type WriteResult = WriteOutcome | FailOutcome;

/**
 * How long the run holds its lease by its own clock: a tenth less than the
 * lease, because the database started it when the extension's statement
 * began, before the reply came back (a slow reply would otherwise leave the
 * run believing in a lease the database has already ended).
 */
function localLeaseMs(leaseMs: number): number {
  return leaseMs - Math.floor(leaseMs / 10);
}

/**
 * The wait before retrying a lease extension after `failures` failed in a
 * row: lease/30 (at most 1 s: 1 s at the default 30 s lease), doubling, each
 * wait at most lease/6, so the tries go on until the lease runs out.
 */
function extendRetryMs(failures: number, leaseMs: number): number {
  const baseMs = Math.max(1, Math.min(1000, Math.floor(leaseMs / 30)));
  return exponentialMs(failures, baseMs, Math.max(baseMs, Math.floor(leaseMs / 6)));
}

interface HandlerContextOptions {
  readonly task: ClaimedTask;
  readonly ref: AttemptRef;
  readonly store: StorePort;
  readonly leaseMs: number;
  readonly logger: Logger;
  readonly abort: { readonly signal: AbortSignal };
}

/**
 * A run's handler context. The worker makes one per task, so it is a plain
 * object of fields: the logger and the two methods are made on first use
 * (most handlers touch neither), and the methods come bound, so a handler
 * may destructure them.
 */
class RunHandlerContext implements HandlerContext {
  readonly taskId: string;
  readonly type: string;
  readonly queue: string;
  readonly payload: Json;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly token: AttemptRef;
  readonly #opts: HandlerContextOptions;
  readonly #send: (event: RunEvent) => void;
  #logger: Logger | undefined;
  #extendLease: (() => Promise<void>) | undefined;
  #onComplete: ((work: CompletionWork) => void) | undefined;

  constructor(opts: HandlerContextOptions, send: (event: RunEvent) => void) {
    const { task, ref } = opts;
    this.taskId = ref.id;
    this.type = task.type;
    this.queue = task.queue;
    this.payload = task.payload;
    this.attempt = ref.attempt;
    this.maxAttempts = task.maxAttempts;
    this.token = ref;
    this.#opts = opts;
    this.#send = send;
  }

  get signal(): AbortSignal {
    return this.#opts.abort.signal;
  }

  #fields(): Record<string, unknown> {
    return { taskId: this.taskId, attempt: this.attempt, type: this.type };
  }

  get logger(): Logger {
    if (!this.#logger) {
      const log = this.#opts.logger;
      const fields = this.#fields();
      this.#logger = {
        info: (m, f) => log.info(m, { ...fields, ...f }),
        warn: (m, f) => log.warn(m, { ...fields, ...f }),
        error: (m, f) => log.error(m, { ...fields, ...f }),
      };
    }
    return this.#logger;
  }

  get extendLease(): () => Promise<void> {
    this.#extendLease ??= async () => {
      const { store, ref, leaseMs, logger } = this.#opts;
      try {
        this.#send({ type: 'LEASE.RESULT', outcome: await store.extendLease(ref, leaseMs) });
      } catch (error) {
        logger.warn('lease extension failed', { ...this.#fields(), error: messageOf(error) });
      }
    };
    return this.#extendLease;
  }

  get onComplete(): (work: CompletionWork) => void {
    this.#onComplete ??= (work) => this.#send({ type: 'WORK', work });
    return this.#onComplete;
  }
}

/**
 * The context a handler receives. `send` delivers the run's own events
 * (lease results, registered work) to whoever runs it: the run actor, or
 * the worker's inline lane.
 */
export function handlerContext(
  opts: HandlerContextOptions,
  send: (event: RunEvent) => void,
): HandlerContext {
  return new RunHandlerContext(opts, send);
}

/** Calls a handler; a synchronous throw becomes a rejection. */
export async function callHandler(
  handler: TaskHandler | undefined,
  context: HandlerContext,
): Promise<Json> {
  if (!handler) throw new HandlerNotFoundError(`no handler for task type ${context.type}`);
  const result = await handler.run(context);
  return result ?? null;
}

export const runMachine = setup({
  types: {
    input: {} as RunInput,
    context: {} as RunContext,
    events: {} as RunEvent,
  },
  actors: {
    handler: fromPromise<
      Json,
      { handler: TaskHandler | undefined; context: HandlerContext } | { adopted: Promise<Json> }
    >(({ input }) =>
      'adopted' in input ? input.adopted : callHandler(input.handler, input.context),
    ),
    extendLease: fromPromise<LeaseOutcome, { store: StorePort; ref: AttemptRef; leaseMs: number }>(
      ({ input }) => input.store.extendLease(input.ref, input.leaseMs),
    ),
    write: fromPromise<WriteResult, { store: StorePort; ref: AttemptRef; write: Write }>(
      ({ input }) => {
        const { store, ref, write } = input;
        if (write.kind === 'fail') return store.fail(write.request);
        if (write.kind === 'cancel') return store.finishCancelled(ref);
        return store.complete(ref, { result: write.result, work: write.work });
      },
    ),
  },
  delays: {
    timeout: ({ context }) =>
      context.timeoutMs === undefined
        ? NEVER_MS
        : Math.max(1, context.timeoutMs - context.elapsedMs),
    leaseRenewal: ({ context }) =>
      Math.max(1, Math.floor(context.leaseMs / 3) - context.leaseElapsedMs),
    leaseExpiry: ({ context }) =>
      Math.max(1, localLeaseMs(context.leaseMs) - context.leaseElapsedMs),
    extendRetry: ({ context }) => extendRetryMs(context.extendFailures, context.leaseMs),
    writeRetry: ({ context }) => context.writeRetryMs * context.writeTries,
  },
  guards: {
    hasTimeout: ({ context }) => context.timeoutMs !== undefined,
    leaseStale: (_, outcome: LeaseOutcome) => !outcome.ok,
    cancelRequested: (_, outcome: LeaseOutcome) => outcome.ok && outcome.cancelRequested,
    canRetryWrite: ({ context }) => context.writeTries < context.writeAttempts,
    renewalDue: ({ context }) =>
      context.leaseElapsedMs > 0 && context.leaseElapsedMs >= Math.floor(context.leaseMs / 3),
  },
  actions: {
    abortSignal: ({ context }, reason: AbortReason) => abort(context, reason),
    leaseExtended: assign({ leaseElapsedMs: 0, extendFailures: 0 }),
    logLeaseExpired: ({ context }) =>
      context.logger.error('lease expired without a successful extension; giving up the run', {
        taskId: context.ref.id,
        attempt: context.ref.attempt,
        leaseMs: context.leaseMs,
        failedExtensions: context.extendFailures,
      }),
    logError: ({ context }, params: { message: string; error: unknown }) =>
      context.logger.error(params.message, {
        taskId: context.ref.id,
        attempt: context.ref.attempt,
        error: messageOf(params.error),
      }),
    settle: sendParent(({ context }): RunSettledEvent => ({
      type: 'RUN.SETTLED',
      ref: context.ref,
      taskType: context.task.type,
      outcome: context.outcome ?? { kind: 'write_failed', error: 'no outcome' },
    })),
  },
}).createMachine({
  id: 'run',
  context: ({ input }) => ({
    ...input,
    ref: { id: input.task.id, attempt: input.task.attempt },
    controller: input.adopted?.controller ?? new LazyAbortController(),
    elapsedMs: input.adopted?.elapsedMs ?? 0,
    leaseElapsedMs: input.adopted?.leaseElapsedMs ?? 0,
    extendFailures: 0,
    work: input.adopted?.work,
    write: undefined,
    writeTries: 0,
    outcome: undefined,
  }),
  initial: 'running',
  states: {
    running: {
      invoke: {
        src: 'handler',
        input: ({ context, self }) =>
          context.adopted
            ? { adopted: context.adopted.promise }
            : {
                handler: context.handler,
                context: handlerContext({ ...context, abort: context.controller }, (event) =>
                  self.send(event),
                ),
              },
        onDone: [
          {
            guard: ({ context }) => context.work !== undefined,
            target: 'writing',
            actions: assign({
              write: ({ context, event }) => ({
                kind: 'complete',
                result: event.output,
                work: context.work!,
              }),
            }),
          },
          {
            target: 'settled',
            actions: assign({
              outcome: ({ event }) => ({ kind: 'succeeded', result: event.output }),
            }),
          },
        ],
        onError: {
          target: 'writing',
          actions: assign({
            write: ({ context, event }) => failWrite(context, event.error, false),
          }),
        },
      },
      after: {
        timeout: {
          guard: 'hasTimeout',
          target: 'writing',
          actions: [
            { type: 'abortSignal', params: 'timeout' },
            assign({
              write: ({ context }) =>
                failWrite(
                  context,
                  new RunTimeoutError(`timed out after ${context.timeoutMs} ms`),
                  true,
                ),
            }),
          ],
        },
      },
      on: {
        WORK: {
          actions: assign({ work: ({ event }: { event: { work: CompletionWork } }) => event.work }),
        },
        CANCEL: '#run.cancelling',
        ABORT: {
          target: 'settled',
          actions: [
            { type: 'abortSignal', params: 'shutdown' },
            assign({ outcome: { kind: 'abandoned' } }),
          ],
        },
      },
      initial: 'leased',
      states: {
        // The lease, from the handler's start (an adopted run counts the time
        // already spent) or the last successful extension. Renewed every lease/3;
        // a failed extension is retried after a short backoff while the lease
        // has time left. Once it has run out with no extension, the task may
        // be rescued and run elsewhere: the run stops claiming it.
        leased: {
          after: {
            leaseExpiry: {
              target: '#run.leaseLost',
              actions: { type: 'logLeaseExpired' },
            },
          },
          on: {
            'LEASE.RESULT': [
              {
                guard: { type: 'leaseStale', params: ({ event }) => event.outcome },
                target: '#run.leaseLost',
              },
              {
                guard: { type: 'cancelRequested', params: ({ event }) => event.outcome },
                target: '#run.cancelling',
              },
              { target: 'leased', reenter: true, actions: 'leaseExtended' },
            ],
          },
          initial: 'waiting',
          states: {
            waiting: {
              // An adopted run may already be due for its renewal.
              always: { guard: 'renewalDue', target: 'extending' },
              after: { leaseRenewal: 'extending' },
            },
            extending: {
              invoke: {
                src: 'extendLease',
                input: ({ context }) => ({
                  store: context.store,
                  ref: context.ref,
                  leaseMs: context.leaseMs,
                }),
                onDone: [
                  {
                    guard: { type: 'leaseStale', params: ({ event }) => event.output },
                    target: '#run.leaseLost',
                  },
                  {
                    guard: { type: 'cancelRequested', params: ({ event }) => event.output },
                    target: '#run.cancelling',
                  },
                  // Re-entering `leased` starts the lease and the schedule afresh.
                  { target: '#run.running.leased', reenter: true, actions: 'leaseExtended' },
                ],
                onError: {
                  target: 'retrying',
                  actions: [
                    // The first failure in a row is said; the retries are not (an
                    // outage would log every run's every retry), the give-up is.
                    ({ context, event }) => {
                      if (context.extendFailures > 0) return;
                      context.logger.error(
                        'lease extension failed; retrying until the lease runs out',
                        {
                          taskId: context.ref.id,
                          attempt: context.ref.attempt,
                          error: messageOf(event.error),
                        },
                      );
                    },
                    assign({ extendFailures: ({ context }) => context.extendFailures + 1 }),
                  ],
                },
              },
            },
            retrying: { after: { extendRetry: 'extending' } },
          },
        },
      },
    },
    cancelling: {
      always: {
        target: 'writing',
        actions: [
          { type: 'abortSignal', params: 'cancelled' },
          assign({ write: { kind: 'cancel' } }),
        ],
      },
    },
    leaseLost: {
      always: {
        target: 'settled',
        actions: [
          { type: 'abortSignal', params: 'lease_lost' },
          assign({ outcome: { kind: 'stale' } }),
        ],
      },
    },
    writing: {
      entry: assign({ writeTries: ({ context }) => context.writeTries + 1 }),
      invoke: {
        src: 'write',
        input: ({ context }) => ({ store: context.store, ref: context.ref, write: context.write! }),
        onDone: {
          target: 'settled',
          actions: assign({
            outcome: ({ context, event }) => outcomeOf(context.write!, event.output),
          }),
        },
        onError: [
          {
            guard: 'canRetryWrite',
            target: 'writeBackoff',
            actions: {
              type: 'logError',
              params: ({ event }) => ({
                message: 'store write failed; retrying',
                error: event.error,
              }),
            },
          },
          {
            target: 'settled',
            actions: [
              {
                type: 'logError',
                params: ({ event }) => ({
                  message: 'store write failed; giving up',
                  error: event.error,
                }),
              },
              assign({
                outcome: ({ event }) => ({ kind: 'write_failed', error: messageOf(event.error) }),
              }),
            ],
          },
        ],
      },
    },
    writeBackoff: { after: { writeRetry: 'writing' } },
    settled: { type: 'final', entry: 'settle' },
  },
});

function outcomeOf(write: Write, result: WriteResult): RunOutcome {
  if (!result.ok) return { kind: 'stale' };
  if (write.kind === 'cancel') return { kind: 'cancelled' };
  if (write.kind === 'complete') return { kind: 'completed' };
  const status = 'status' in result ? result.status : 'retry';
  // A failure of a task whose cancellation was requested ended it cancelled.
  if (status === 'cancelled') return { kind: 'cancelled' };
  return { kind: 'failed', status, timedOut: write.timedOut };
}
