/**
 * Glossary
 *
 * - **task**: one unit of work: a `type` (which handler runs it), a JSON
 *   `payload`, a `queue`, a priority and a due time (`runAt`). Its state machine
 *   lives in PostgreSQL: pending -> claimed -> running -> completed, with
 *   running -> retry (a later attempt at `runAt`), -> dead_letter (attempts
 *   spent or a non-retryable error) and -> cancelled.
 * - **attempt**: the number of times the task has been claimed. A claim
 *   increments it; the pair (task id, attempt) is the fencing token of a run: a
 *   completion, failure or lease extension from an older attempt is *stale*
 *   and changes nothing.
 * - **lease**: a claimed or running task belongs to one node (`leaseOwner`)
 *   until `leaseExpiresAt`, on PostgreSQL's clock. Long handlers extend it; an
 *   expired lease is rescued (the task becomes claimable again).
 * - **group**: the nodes that share one warm-backup token (`groupId`).
 * - **node**: one Baton process; its unique id is Ballerina's `taskId`.
 * - **term**: the number of the current grant of a group's token. It strictly
 *   increases on every grant; leader-only writes check it.
 * - **token bearer**: the node that holds the token of its group in the
 *   current term: the only one that runs the group's coordinated services.
 */

export type TaskStatus =
  'pending' | 'claimed' | 'running' | 'retry' | 'completed' | 'dead_letter' | 'cancelled';

export const TASK_STATUSES: readonly TaskStatus[] = [
  'pending',
  'claimed',
  'running',
  'retry',
  'completed',
  'dead_letter',
  'cancelled',
];

export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set([
  'completed',
  'dead_letter',
  'cancelled',
]);

/** JSON values, as stored in `jsonb` columns. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Task ids are PostgreSQL `bigint`s, carried as decimal strings. */
export type TaskId = string;

export interface Task<P = Json> {
  readonly id: TaskId;
  readonly type: string;
  readonly queue: string;
  readonly payload: P;
  readonly status: TaskStatus;
  readonly priority: number;
  readonly runAt: Date;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly idempotencyKey: string | null;
  readonly leaseOwner: string | null;
  readonly leaseExpiresAt: Date | null;
  readonly cancelRequested: boolean;
  readonly lastError: Json | null;
  readonly result: Json | null;
  readonly createdAt: Date;
  readonly claimedAt: Date | null;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
}

export interface EnqueueInput<P = Json> {
  readonly type: string;
  readonly payload?: P;
  /** @default 'default' */
  readonly queue?: string;
  /** Higher runs first. @default 0 */
  readonly priority?: number;
  /** Not before this time. @default now (PostgreSQL's clock) */
  readonly runAt?: Date | string;
  /** Delay from now, in milliseconds, on PostgreSQL's clock; an alternative to `runAt`. */
  readonly delayMs?: number;
  /** @default 5 */
  readonly maxAttempts?: number;
  /** A second enqueue with the same key returns the first task. */
  readonly idempotencyKey?: string;
}

export interface EnqueueResult {
  readonly id: TaskId;
  /** True when the idempotency key matched an existing task; nothing new was written. */
  readonly duplicate: boolean;
}

export interface ClaimOptions {
  /** The node that will own the lease. */
  readonly owner: string;
  /** @default 'default' */
  readonly queue?: string;
  /** Claim only these types (the handlers this node has). */
  readonly types?: readonly string[];
  readonly limit: number;
  readonly leaseMs: number;
  /**
   * Also start the runs (claimed -> running in the same statement), for a
   * worker that starts every task it claims at once. @default false
   */
  readonly start?: boolean;
}

/** A task as the worker's claim returns it: claimed, started, and what its run needs. */
export interface RunnableTask {
  readonly id: TaskId;
  readonly type: string;
  readonly queue: string;
  readonly payload: Json;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly idempotencyKey: string | null;
  readonly status: 'running';
}

/** Which tasks of an enqueue the submitting node starts itself (`enqueueAndStart`). */
export interface DirectStart {
  /** The node that runs them (the lease owner). */
  readonly owner: string;
  readonly leaseMs: number;
  /** The queue that node works: its backlog is checked, and only its tasks start. */
  readonly queue: string;
  /**
   * The task types that node handles. Only waiting tasks of these types are
   * its backlog: a task no handler of this node can run does not hold its
   * submissions back.
   */
  readonly types: readonly string[];
  /** One flag per task: whether the node has a slot held for it. */
  readonly eligible: readonly boolean[];
}

/** A task whose lease expired, as a rescue left it (retry, dead_letter or cancelled). */
export interface RescuedTask {
  readonly id: TaskId;
  readonly status: TaskStatus;
  readonly type: string;
  /** The attempt whose lease expired. */
  readonly attempt: number;
}

/** A run's fencing token: the task and the attempt the claim produced. */
export interface AttemptRef {
  readonly id: TaskId;
  readonly attempt: number;
}

export type Outcome = { readonly ok: true } | { readonly ok: false; readonly reason: 'stale' };

export interface FailInput extends AttemptRef {
  readonly error: {
    readonly message: string;
    readonly name?: string;
    readonly stack?: string;
    readonly code?: string;
  };
  /** A non-retryable error dead-letters the task at once. @default true */
  readonly retryable?: boolean;
  /** Overrides the computed backoff, in milliseconds. */
  readonly retryInMs?: number;
}

export type FailOutcome =
  | {
      readonly ok: true;
      /** `cancelled` when the task's cancellation had been requested. */
      readonly status: 'retry' | 'dead_letter' | 'cancelled';
      readonly runAt: Date;
    }
  | { readonly ok: false; readonly reason: 'stale' };

export type CancelOutcome =
  | { readonly ok: true; readonly status: 'cancelled' | 'cancel_requested' }
  | { readonly ok: false; readonly reason: 'already_final'; readonly status: TaskStatus };

export interface HistoryEntry {
  readonly taskId: TaskId;
  readonly from: TaskStatus | null;
  readonly to: TaskStatus;
  readonly at: Date;
  readonly node: string | null;
  readonly attempt: number;
  readonly detail: Json | null;
}

export interface ListFilter {
  readonly status?: TaskStatus | readonly TaskStatus[];
  readonly type?: string;
  readonly queue?: string;
  /** Keyset cursor: the `nextCursor` of the previous page. */
  readonly cursor?: string;
  /** @default 100 */
  readonly limit?: number;
}

export interface ListPage {
  readonly tasks: readonly Task[];
  readonly nextCursor: string | null;
}

export type StatusCounts = Record<TaskStatus, number>;

export interface BackoffPolicy {
  /** First retry delay ceiling. @default 1000 */
  readonly baseMs: number;
  /** Largest delay ceiling. @default 3_600_000 */
  readonly maxMs: number;
}
