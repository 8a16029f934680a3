/**
 * The store as the worker sees it, with what the runtime adds on the way:
 * metrics (durations, outcomes, stale writes) and task lifecycle events on
 * `baton.<group>.events.task.<status>`. Events are published one message per
 * store call (a batch of tasks), not one per task, to keep the hot path cheap.
 */
import type {
  AttemptRef,
  BatchOutcome,
  ClaimRequest,
  ClaimedTask,
  CompletionRef,
  CompletionWork,
  FailOutcome,
  FailRequest,
  Json,
  LeaseOutcome,
  StorePort,
  WriteOutcome,
} from '@baton/actors';
import type { TaskStatus, TaskStore } from '@baton/store';
import { isTaskOutcome, type BatonMetrics, type LoopMonitor } from './observability/index.js';

/** One task in a lifecycle event. */
export interface TaskEventItem {
  readonly id: string;
  readonly type: string;
  readonly attempt: number;
}

/** The body of a message on `events.task.<status>`. */
export interface TaskEventMessage {
  readonly status: TaskStatus;
  readonly node: string;
  readonly at: number;
  readonly tasks: readonly TaskEventItem[];
}

/** A claimed (or directly started) task as the store returns it. */
type TrackedTask = ClaimedTask & { status?: string; idempotencyKey?: string | null };

export type EmitTaskEvent = (status: TaskStatus, tasks: readonly TaskEventItem[]) => void;

interface Running {
  readonly type: string;
  readonly attempt: number;
  readonly since: number;
  /** A tick of a schedule (its idempotency key says so): its retry config and error policy apply. */
  readonly scheduled: boolean;
}

/** What scheduled tasks add to a failure. */
export interface ScheduledTaskHooks {
  /** The schedule's retry delay for this attempt, if it has a retry config. */
  retryDelayMs(taskId: string, attempt: number): Promise<number | undefined>;
  /** The task of a tick was dead-lettered: apply the schedule's error policy. */
  deadLettered(taskId: string): Promise<void>;
}

/** A task dead-lettered here: by its run's failure, or by the rescue of its expired lease. */
export interface DeadLetter {
  readonly id: string;
  readonly type: string;
  readonly attempt: number;
  readonly error: string;
}

export class TrackedStore implements StorePort {
  readonly #inner: TaskStore;
  readonly #emit: EmitTaskEvent;
  readonly #metrics: BatonMetrics;
  readonly #loop: LoopMonitor;
  readonly #running = new Map<string, Running>();
  readonly #scheduled: ScheduledTaskHooks;
  readonly #deadLettered: (task: DeadLetter) => void;

  /**
   * `loop` hears of the worker loop's progress: a claim that found work or a
   * finished run is progress; an empty claim with nothing in flight is idle
   * by choice.
   */
  constructor(
    inner: TaskStore,
    emit: EmitTaskEvent,
    metrics: BatonMetrics,
    loop: LoopMonitor,
    scheduled: ScheduledTaskHooks,
    deadLettered: (task: DeadLetter) => void = () => undefined,
  ) {
    this.#scheduled = scheduled;
    this.#deadLettered = deadLettered;
    this.#inner = inner;
    this.#emit = emit;
    this.#metrics = metrics;
    this.#loop = loop;
  }

  /** Runs of this node that the store has not finished yet. */
  get inFlight(): number {
    return this.#running.size;
  }

  /** With `start: true` (the worker's claims), the tasks come back running. */
  async claim(request: ClaimRequest & { start?: boolean }): Promise<readonly ClaimedTask[]> {
    const t0 = performance.now();
    const tasks = request.start
      ? await this.#inner.claimRuns(request)
      : await this.#inner.claim(request);
    this.#metrics.claimDuration.observe((performance.now() - t0) / 1000);
    if (tasks.length === 0) {
      if (this.#running.size === 0) this.#loop.idle();
      else this.#loop.busy();
      return tasks;
    }
    this.#track(tasks);
    return tasks;
  }

  /** Tasks stored running on this node by a direct start: tracked as a claim's. */
  started(tasks: readonly TrackedTask[]): void {
    if (tasks.length > 0) this.#track(tasks);
  }

  #track(tasks: readonly TrackedTask[]): void {
    this.#loop.progress();
    const now = performance.now();
    // One call per task, not a loop body here: this runs once per batch, too
    // rarely for V8 to optimize a loop in it (see the worker's startInline).
    const items = tasks.map((t) => this.#remember(t, now));
    this.#emit('claimed', items);
    // A claim with `start` also started the runs: the `running` event of
    // markRunning. With all of them started it is the same items array, which
    // the emitter then packs once for both messages.
    const allStarted = tasks.every((t) => t.status === 'running');
    const started = allStarted ? items : items.filter((_, i) => tasks[i]!.status === 'running');
    if (started.length > 0) this.#emit('running', started);
  }

  #remember(t: TrackedTask, since: number): TaskEventItem {
    this.#running.set(t.id, {
      type: t.type,
      attempt: t.attempt,
      since,
      scheduled: t.idempotencyKey?.startsWith('schedule:') ?? false,
    });
    return { id: t.id, type: t.type, attempt: t.attempt };
  }

  async markRunning(refs: readonly AttemptRef[]): Promise<readonly BatchOutcome[]> {
    const outcomes = await this.#inner.markRunning(refs);
    this.#settle(refs, outcomes, 'running', false);
    return outcomes;
  }

  async completeMany(refs: readonly CompletionRef[]): Promise<readonly BatchOutcome[]> {
    const outcomes = await this.#inner.completeMany(refs);
    this.#settle(refs, outcomes, 'completed', true);
    return outcomes;
  }

  async complete(
    ref: AttemptRef,
    options: { result?: Json; work?: CompletionWork },
  ): Promise<WriteOutcome> {
    const outcome = await this.#inner.complete(ref, {
      ...(options.result !== undefined ? { result: options.result } : {}),
      ...(options.work ? { work: options.work } : {}),
    });
    this.#settle([ref], [outcome], 'completed', true);
    return outcome;
  }

  async fail(request: FailRequest): Promise<FailOutcome> {
    const run = this.#running.get(request.id);
    const scheduled = run?.scheduled ?? false;
    let effective = request;
    if (scheduled && request.retryInMs === undefined) {
      const delay = await this.#scheduled
        .retryDelayMs(request.id, request.attempt)
        .catch(() => undefined);
      if (delay !== undefined) effective = { ...request, retryInMs: delay };
    }
    const outcome = await this.#inner.fail(effective);
    this.#settle([request], [outcome], outcome.ok ? outcome.status : 'retry', true);
    if (outcome.ok && outcome.status === 'dead_letter') {
      this.#deadLettered({
        id: request.id,
        type: run?.type ?? '',
        attempt: request.attempt,
        error: request.error.message,
      });
    }
    if (scheduled && outcome.ok && outcome.status === 'dead_letter') {
      await this.#scheduled.deadLettered(request.id).catch(() => undefined);
    }
    return outcome;
  }

  async extendLease(ref: AttemptRef, leaseMs: number): Promise<LeaseOutcome> {
    const outcome = await this.#inner.extendLease(ref, leaseMs);
    // A renewed lease is the loop at work: a long handler is not a stalled worker.
    if (outcome.ok) this.#loop.progress();
    else this.#metrics.recordStaleWrite('attempt');
    return outcome;
  }

  async finishCancelled(ref: AttemptRef): Promise<WriteOutcome> {
    const outcome = await this.#inner.finishCancelled(ref);
    this.#settle([ref], [outcome], 'cancelled', true);
    return outcome;
  }

  async release(refs: readonly AttemptRef[], node: string): Promise<number> {
    const changed = await this.#inner.releaseEach(refs, node);
    const to = new Map(changed.map((r) => [r.id, r.status]));
    // Events only for what the store changed, under the status it left.
    const items = { pending: [] as TaskEventItem[], cancelled: [] as TaskEventItem[] };
    for (const r of refs) {
      const status = to.get(r.id);
      if (status) items[status].push(...this.#take(r));
      else this.forget(r);
    }
    for (const status of ['pending', 'cancelled'] as const) {
      if (items[status].length > 0) this.#emit(status, items[status]);
    }
    return changed.length;
  }

  async rescueExpired(options: {
    node: string;
    limit?: number;
  }): Promise<readonly { id: string; status: string }[]> {
    const rescued = await this.#inner.rescueExpired(options);
    for (const r of rescued) {
      if (r.status === 'retry') this.#metrics.taskRetries.inc({ type: r.type });
      if (r.status === 'dead_letter') this.#metrics.tasksDeadLettered.inc({ type: r.type });
    }
    for (const status of ['retry', 'dead_letter', 'cancelled'] as const) {
      const items = rescued
        .filter((r) => r.status === status)
        .map(({ id, type, attempt }) => ({ id, type, attempt }));
      if (items.length > 0) this.#emit(status, items);
    }
    // A tick's task dead-lettered by a rescue (its runs kept dying or hanging)
    // gets its schedule's error policy, as one that failed does.
    for (const r of rescued) {
      if (r.status !== 'dead_letter') continue;
      this.#deadLettered({ id: r.id, type: r.type, attempt: r.attempt, error: 'lease expired' });
      await this.#scheduled.deadLettered(r.id).catch(() => undefined);
    }
    return rescued;
  }

  /**
   * Drops the record of `ref`'s run if it is that attempt's (a newer one's
   * stays): a run that ended here without a final write, and every final write.
   */
  forget(ref: AttemptRef): void {
    if (this.#running.get(ref.id)?.attempt === ref.attempt) this.#running.delete(ref.id);
  }

  #take(ref: AttemptRef): TaskEventItem[] {
    const run = this.#running.get(ref.id);
    if (run?.attempt !== ref.attempt) return [];
    this.#running.delete(ref.id);
    return [{ id: ref.id, type: run.type, attempt: run.attempt }];
  }

  /**
   * Records outcomes: the metrics once per run of tasks of one type (a batch
   * is usually one), one event for the batch, stale writes counted.
   */
  #settle(
    refs: readonly AttemptRef[],
    outcomes: readonly (BatchOutcome | WriteOutcome | FailOutcome)[],
    status: TaskStatus,
    final: boolean,
  ): void {
    const items: TaskEventItem[] = [];
    const now = performance.now();
    if (final) this.#loop.progress();
    const recorded = final && isTaskOutcome(status) ? status : undefined;
    let runType: string | undefined;
    let durations: number[] = [];
    const record = () => {
      if (recorded && runType !== undefined && durations.length > 0) {
        this.#metrics.recordOutcomes(runType, recorded, durations);
      }
    };
    refs.forEach((ref, i) => {
      const outcome = outcomes[i];
      if (!outcome) return;
      if (!outcome.ok) {
        if (outcome.reason === 'stale') this.#metrics.recordStaleWrite('attempt');
        if (final) this.forget(ref);
        return;
      }
      const run = this.#running.get(ref.id);
      const type = run?.type ?? '';
      if (final) {
        this.forget(ref);
        if (recorded) {
          if (type !== runType) {
            record();
            runType = type;
            durations = [];
          }
          durations.push(run ? (now - run.since) / 1000 : 0);
        }
      }
      items.push({ id: ref.id, type, attempt: ref.attempt });
    });
    record();
    if (items.length > 0) this.#emit(status, items);
  }
}
