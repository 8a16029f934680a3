/**
 * The worker's inline lane: how it starts the handlers of a claimed batch
 * without one run actor per task.
 *
 * Spawning a `run` actor costs a few hundred microseconds and XState's
 * bookkeeping of children and timers grows with the number of runs in flight,
 * so a short handler (most tasks) would spend far more time in its actor than
 * in itself. The worker therefore calls the handlers of a batch at once, with
 * the same handler context a run actor gives, and hands a run over to a `run`
 * actor (which then owns it exactly as if it had started it) as soon as
 * anything more than "returned a result" happens:
 *
 * - the handler threw, or registered completion work: the actor writes the
 *   failure or the completion, with its retries;
 * - CANCEL, ABORT (drain), or a lease extension the handler asked for that
 *   came back stale or with a cancellation: the actor handles the event;
 * - the handler is still running at its check, half of the earlier
 *   of lease/3 and its timeout: the actor takes over the lease renewals and
 *   the timeout, counting the time already spent.
 *
 * A handler that simply returns within that time is completed by the worker
 * in a batch, as a run actor's success would be. No decision is made here:
 * this module only keeps the records and batches their settlements into one
 * worker event per microtask; the worker machine decides what happens.
 */
import type { AnyActorRef } from 'xstate';
import type { ClaimedTask, CompletionWork, Json, StorePort, TaskHandler, Logger } from './ports.js';
import { LazyAbortController } from './abort.js';
import { callHandler, handlerContext, type RunEvent } from './run.machine.js';

/** A run started inline by the worker. */
export interface LaneRun {
  /** The run's key in the worker's `runs`. */
  readonly key: string;
  readonly task: ClaimedTask;
  readonly handler: TaskHandler | undefined;
  readonly timeoutMs: number | undefined;
  readonly controller: LazyAbortController;
  /** The handler's result (set once, right after the record is made). */
  promise: Promise<Json>;
  /** When the handler started, on the worker's `now` clock. */
  readonly startedAt: number;
  /** When its lease was last extended on the handler's request while inline (the clock of `startedAt`). */
  leaseExtendedAt: number | undefined;
  /** Completion work registered by the handler. */
  work: CompletionWork | undefined;
  /** How the handler ended, once it has. */
  settled: { readonly ok: true; readonly result: Json } | { readonly ok: false } | undefined;
  /** The run actor that owns it, once handed over, and that actor's id. */
  actor: AnyActorRef | undefined;
  actorId: string | undefined;
  /** Events for the run actor that arrived before the hand-over. */
  readonly early: RunEvent[];
}

/** What the lane tells the worker. */
export type LaneEvent =
  /** Handlers of inline runs ended (one event per microtask). */
  | { type: 'LANE.SETTLED'; runs: readonly LaneRun[] }
  /** A run must be handed over now (an early event needs its actor). */
  | { type: 'LANE.ADOPT'; key: string }
  /** The earliest inline run's check time: hand over the runs still running past theirs. */
  | { type: 'LANE.CHECK' };

interface Sink {
  send(event: LaneEvent): void;
}

/** The lane's records and its batching of settlements, one per worker. */
export class Lane {
  #worker: Sink | undefined;
  #settled: LaneRun[] = [];
  #scheduled = false;
  readonly #now: () => number;

  /** @param now the clock of the runs' `startedAt` (the worker's `config.now`). */
  constructor(now: () => number) {
    this.#now = now;
  }

  /** Starts a handler inline; its settlement reaches `worker` as `LANE.SETTLED`. */
  start(
    worker: Sink,
    opts: {
      readonly key: string;
      readonly task: ClaimedTask;
      readonly handler: TaskHandler | undefined;
      readonly timeoutMs: number | undefined;
      readonly store: StorePort;
      readonly leaseMs: number;
      readonly logger: Logger;
      readonly startedAt: number;
    },
  ): LaneRun {
    this.#worker = worker;
    const controller = new LazyAbortController();
    const ref = { id: opts.task.id, attempt: opts.task.attempt };
    // The record exists before the handler is called: it may register work at once.
    const run: LaneRun = {
      key: opts.key,
      task: opts.task,
      handler: opts.handler,
      timeoutMs: opts.timeoutMs,
      controller,
      promise: undefined as unknown as Promise<Json>,
      startedAt: opts.startedAt,
      leaseExtendedAt: undefined,
      work: undefined,
      settled: undefined,
      actor: undefined,
      actorId: undefined,
      early: [],
    };
    const context = handlerContext(
      {
        task: opts.task,
        ref,
        store: opts.store,
        leaseMs: opts.leaseMs,
        logger: opts.logger,
        abort: controller,
      },
      (event) => this.#route(run, event),
    );
    const promise = callHandler(opts.handler, context);
    run.promise = promise;
    promise.then(
      (result) => this.#settle(run, { ok: true, result }),
      () => this.#settle(run, { ok: false }),
    );
    return run;
  }

  /** An event of the run itself: to its actor, or kept until the hand-over. */
  #route(run: LaneRun, event: RunEvent): void {
    if (run.actor) {
      run.actor.send(event);
      return;
    }
    if (event.type === 'WORK') {
      run.work = event.work;
      return;
    }
    if (event.type === 'LEASE.RESULT' && (!event.outcome.ok || event.outcome.cancelRequested)) {
      run.early.push(event);
      this.#worker?.send({ type: 'LANE.ADOPT', key: run.key });
      return;
    }
    // A lease extended on request while inline: the lease is counted from now.
    if (event.type === 'LEASE.RESULT') run.leaseExtendedAt = this.#now();
  }

  #settle(run: LaneRun, settled: NonNullable<LaneRun['settled']>): void {
    run.settled = settled;
    if (run.actor) return; // its actor awaits the same promise
    this.#settled.push(run);
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      const runs = this.#settled;
      this.#settled = [];
      if (runs.length > 0) this.#worker?.send({ type: 'LANE.SETTLED', runs });
    });
  }
}
