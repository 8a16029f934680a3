/** The worker's types: its input (compiled once), context, events and counters. */
import { intOption, optionalInt } from './options.js';
import type { DoneActorEvent, ErrorActorEvent } from 'xstate';
import type {
  AttemptRef,
  BatchOutcome,
  ClaimedTask,
  CompletionRef,
  HandlerRegistry,
  Logger,
  StorePort,
} from './ports.js';
import type { ClaimPlan } from './claim.js';
import type { RunOutcome, RunSettledEvent } from './run.machine.js';
import type { Lane, LaneEvent, LaneRun } from './worker.lane.js';

/** Input of the worker. Durations are milliseconds. */
export interface WorkerInput {
  readonly nodeId: string;
  readonly store: StorePort;
  readonly handlers: HandlerRegistry;
  readonly logger?: Logger;
  /** @default 'default' */
  readonly queue?: string;
  /** Most runs at once on this node. @default 10 */
  readonly concurrency?: number;
  /** Most tasks per claim. @default concurrency */
  readonly claimBatchSize?: number;
  /** With a backlog (the last claim was full), claim again once this many slots are free. @default max(1, concurrency / 4) */
  readonly refillThreshold?: number;
  /** @default 30000 */
  readonly leaseMs?: number;
  /** Fallback poll when no wake-up arrives. @default 2000 */
  readonly pollIntervalMs?: number;
  /** First delay after a failed claim; doubles up to `pollIntervalMs`. @default 100 */
  readonly claimRetryMs?: number;
  /** How long completions are collected before one `completeMany`. @default 5 */
  readonly completionFlushMs?: number;
  /** A batch of this many completions is written at once. @default 500 */
  readonly completionBatchSize?: number;
  /**
   * Most completion batches being written at once (each on its own
   * connection), so a slow write does not hold the next batch back. Claims
   * pause while this many full batches wait behind them. @default 2
   */
  readonly completionWriters?: number;
  /** Timeout of handlers that set none. @default none */
  readonly defaultTimeoutMs?: number;
  /** Grace of a DRAIN that names none. @default 30000 */
  readonly drainGraceMs?: number;
  /** After the grace, how long a drain waits for the last completions to be written. @default 5000 */
  readonly closeTimeoutMs?: number;
  /**
   * Start handlers inline and give a run its own actor only when it needs one
   * (see worker.lane.ts); `false` spawns a run actor per task. @default true
   */
  readonly inlineRuns?: boolean;
  /**
   * The clock inline runs' ages are measured with, in milliseconds (pass a
   * simulated clock's `now` with a simulated clock). @default performance.now
   */
  readonly now?: () => number;
  /** Tries of a run's final write (fail, cancel). @default 3 */
  readonly writeAttempts?: number;
  /** Delay between those tries, times the try number. @default 200 */
  readonly writeRetryMs?: number;
}

/** The compiled worker options. */
export type WorkerConfig = Readonly<
  Required<Omit<WorkerInput, 'store' | 'handlers' | 'logger' | 'defaultTimeoutMs'>> & {
    defaultTimeoutMs: number | undefined;
  }
>;

/** Validates the input and fills in the defaults; throws `ActorConfigError` naming the bad option. */
export function compileWorkerConfig(input: WorkerInput): WorkerConfig {
  const concurrency = intOption('concurrency', input.concurrency, 10);
  const pollIntervalMs = intOption('pollIntervalMs', input.pollIntervalMs, 2000);
  return Object.freeze({
    nodeId: input.nodeId,
    queue: input.queue ?? 'default',
    concurrency,
    claimBatchSize: intOption('claimBatchSize', input.claimBatchSize, concurrency),
    refillThreshold: intOption(
      'refillThreshold',
      input.refillThreshold,
      Math.max(1, Math.floor(concurrency / 4)),
    ),
    leaseMs: intOption('leaseMs', input.leaseMs, 30_000, 3),
    pollIntervalMs,
    claimRetryMs: intOption('claimRetryMs', input.claimRetryMs, Math.min(100, pollIntervalMs)),
    completionFlushMs: intOption('completionFlushMs', input.completionFlushMs, 5, 0),
    completionBatchSize: intOption('completionBatchSize', input.completionBatchSize, 500),
    completionWriters: intOption('completionWriters', input.completionWriters, 2),
    defaultTimeoutMs: optionalInt('defaultTimeoutMs', input.defaultTimeoutMs),
    drainGraceMs: intOption('drainGraceMs', input.drainGraceMs, 30_000, 0),
    closeTimeoutMs: intOption('closeTimeoutMs', input.closeTimeoutMs, 5000, 0),
    inlineRuns: input.inlineRuns ?? true,
    now: input.now ?? (() => performance.now()),
    writeAttempts: intOption('writeAttempts', input.writeAttempts, 3),
    writeRetryMs: intOption('writeRetryMs', input.writeRetryMs, 200, 0),
  });
}

/** Counters of the worker, for the status subject and metrics. */
export interface WorkerStats {
  claimed: number;
  completed: number;
  failed: number;
  deadLettered: number;
  timedOut: number;
  cancelled: number;
  /** Writes refused because the attempt was no longer ours (fencing at work). */
  stale: number;
  released: number;
  claimErrors: number;
  writeErrors: number;
}

/** A run in flight. */
export interface RunEntry extends AttemptRef {
  readonly type: string;
  /** The run actor's id; an inline run's is on its lane record, once it has an actor. */
  readonly actorId?: string;
  /** Started inline by the worker (see worker.lane.ts). */
  readonly lane?: LaneRun;
}

/** The id of a run's actor, if it has one. */
export const actorIdOf = (entry: RunEntry): string | undefined =>
  entry.lane ? entry.lane.actorId : entry.actorId;

/**
 * Child actor ids taken from a pool and given back when the child is
 * stopped, so the ids in use at once are the only ids ever used.
 *
 * XState caches each state node's candidate transitions per event type, for
 * the life of the process, and a child's done and error events are typed
 * after its id (`xstate.done.actor.<id>`). Ids unique per run grew that cache
 * by an entry for every run actor ever spawned: a leak of about 40 bytes a
 * task. Mutable, like the lane: one per worker.
 */
export class ChildIds {
  readonly #prefix: string;
  /** Free ids, oldest first: an id is reused as late as possible. */
  readonly #free = new Set<number>();
  #next = 0;

  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  take(): string {
    const oldest = this.#free.values().next();
    if (oldest.done) return `${this.#prefix}${this.#next++}`;
    this.#free.delete(oldest.value);
    return `${this.#prefix}${oldest.value}`;
  }

  /** `id` (taken here) is free again: its child has been stopped. Giving it twice is harmless. */
  give(id: string): void {
    const n = Number(id.slice(this.#prefix.length));
    if (Number.isInteger(n) && n < this.#next) this.#free.add(n);
  }
}

export interface WorkerContext {
  readonly config: WorkerConfig;
  readonly store: StorePort;
  readonly handlers: HandlerRegistry;
  readonly logger: Logger;
  /** The records of inline runs. */
  readonly lane: Lane;
  /** When the one `LANE.CHECK` timer fires (worker clock), if set. */
  readonly laneCheckAt: number | undefined;
  /**
   * The runs in flight, by key. Copied on write (a new Map per assign), so
   * snapshots stay immutable; a Map because a batch adds or removes hundreds
   * of keys, which a plain object handles badly.
   */
  runs: ReadonlyMap<string, RunEntry>;
  /** The plan of the claim round in flight, if any: what it may bring is not free. */
  claimPlan: ClaimPlan | undefined;
  /** The drain's grace is over and runs were aborted: a direct start is given back, not run. */
  aborted: boolean;
  /** A wake-up arrived that no claim has answered yet. */
  wakePending: boolean;
  /** The last claim filled its limit: more work is likely waiting. */
  backlog: boolean;
  claimErrors: number;
  drainRequested: boolean;
  drainGraceMs: number;
  /** Slots held for direct starts, by key: the task type. */
  reserved: ReadonlyMap<string, string>;
  /** Successes waiting for a completion write. */
  queuedCompletions: CompletionRef[];
  /** The batches being written, by writer slot (`0 .. completionWriters - 1`). */
  flushing: ReadonlyMap<number, readonly CompletionRef[]>;
  /** Ids of run actors (see ChildIds). */
  readonly runIds: ChildIds;
  toRelease: AttemptRef[];
  stats: WorkerStats;
}

export type WorkerEvent =
  /** A dispatch hint: work may be due on `queue` (any queue when absent). */
  | { type: 'WAKE'; queue?: string }
  /** Abort this task's run here, if any (a cancellation hint). */
  | { type: 'CANCEL'; taskId: string }
  /** Stop claiming; let runs finish within `graceMs`, then abort and release the rest. */
  | { type: 'DRAIN'; graceMs?: number }
  | { type: 'COMPLETIONS.CLOSE' }
  /**
   * Direct start (a task submitted to this node, started on it without a
   * claim): hold a slot for a run of `taskType` under `key`. Granted only
   * while accepting work with a slot free within every limit; the caller
   * reads `context.reserved` to learn whether it was.
   */
  | { type: 'DIRECT.RESERVE'; key: string; taskType: string }
  /** The held slot's task was stored running and leased to this node: run it. */
  | { type: 'DIRECT.STARTED'; key: string; task: ClaimedTask }
  /** The held slot is not needed (stored pending, a duplicate, or the write failed). */
  | { type: 'DIRECT.RELEASE'; key: string }
  | RunSettledEvent
  | LaneEvent
  | DoneActorEvent<readonly BatchOutcome[]>
  | ErrorActorEvent;

/** Counts the outcome of a `completeMany`. */
export function countCompletions(
  stats: WorkerStats,
  outcomes: readonly BatchOutcome[],
): WorkerStats {
  const ok = outcomes.filter((o) => o.ok).length;
  return { ...stats, completed: stats.completed + ok, stale: stats.stale + outcomes.length - ok };
}

/** Counts a settled run (successes are counted when their batch is written). */
export function countSettled(stats: WorkerStats, outcome: RunOutcome): WorkerStats {
  const s = { ...stats };
  switch (outcome.kind) {
    case 'completed':
      s.completed++;
      break;
    case 'failed':
      s.failed++;
      if (outcome.status === 'dead_letter') s.deadLettered++;
      if (outcome.timedOut) s.timedOut++;
      break;
    case 'cancelled':
      s.cancelled++;
      break;
    case 'stale':
      s.stale++;
      break;
    case 'write_failed':
      s.writeErrors++;
      break;
    case 'succeeded':
    case 'abandoned':
      break;
  }
  return s;
}
