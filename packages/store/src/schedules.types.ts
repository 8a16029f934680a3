/**
 * Schedules: the types. Ballerina's `task` module (seed 001), durable and cluster-wide.
 *
 * Glossary
 *
 * - **schedule** (Ballerina's *job*): a task template (type, payload, queue,
 *   priority, attempts, retry) plus a **trigger** that says when it is due:
 *   `once` (at a time), `interval` (every `intervalMs`) or `cron` (an
 *   expression in a time zone).
 * - **tick**: one due time of a schedule. Firing a tick *materialises* it: a
 *   `schedule_ticks` row (primary key (schedule, due time)) and a task, in one
 *   transaction, so a tick becomes a task with all of a task's guarantees.
 * - **anchor**: the instant a schedule's due times are computed from
 *   (`startTime`, or the creation time on PostgreSQL's clock). Interval ticks
 *   are `anchor + n * intervalMs`: computed from the schedule, never from when
 *   the last run finished, so they do not drift.
 * - **calendar**: the pure computation of due times (`ScheduleCalendar`). The
 *   store does not parse cron: the runtime hands it a calendar (croner).
 *
 * Times: "now" is PostgreSQL's `now()`, never a node's clock.
 */
import type { Fence } from './tasks.js';
import type { Json, TaskId } from './types.js';

export type ScheduleKind = 'once' | 'interval' | 'cron';

/** A validated trigger. `maxCount` -1 means unlimited. */
export type ScheduleTrigger =
  | { readonly kind: 'once'; readonly at: Date }
  | {
      readonly kind: 'interval';
      readonly intervalMs: number;
      readonly maxCount: number;
      readonly startTime: Date | null;
      readonly endTime: Date | null;
    }
  | {
      readonly kind: 'cron';
      readonly expression: string;
      readonly timeZone: string;
      readonly maxCount: number;
      readonly startTime: Date | null;
      readonly endTime: Date | null;
    };

/**
 * A trigger as callers write it: times as `Date` or ISO 8601 strings with a
 * date, a time and a `Z` or numeric offset (`2027-02-01T09:00:00Z`,
 * `2027-02-01T09:00:00.5+01:00`); other strings, and dates that do not
 * exist (30 February), are refused by name.
 */
export type ScheduleTriggerInput =
  | { readonly kind: 'once'; readonly at: Date | string }
  | {
      readonly kind: 'interval';
      readonly intervalMs: number;
      /** -1: unlimited. @default -1 */
      readonly maxCount?: number;
      /** The anchor of the interval grid. @default the creation time */
      readonly startTime?: Date | string;
      readonly endTime?: Date | string;
    }
  | {
      readonly kind: 'cron';
      /** Five fields, or six with seconds first (croner's syntax). */
      readonly expression: string;
      /** An IANA time zone. @default 'UTC' */
      readonly timeZone?: string;
      /** @default -1 */
      readonly maxCount?: number;
      readonly startTime?: Date | string;
      readonly endTime?: Date | string;
    };

/**
 * What happens to the schedule when one of its ticks fails for good (its task
 * ends in `dead_letter`, i.e. after its retries). Ballerina's meanings:
 *
 * - `LOG_AND_TERMINATE` (default): log the failure and terminate the job (no
 *   more ticks; its state becomes `finished`, `endReason: 'terminated'`).
 * - `LOG_AND_CONTINUE`: log the failure; the job keeps firing.
 * - `TERMINATE`: terminate the job without logging.
 * - `CONTINUE`: keep firing without logging.
 */
export type ErrorPolicy = 'LOG_AND_TERMINATE' | 'LOG_AND_CONTINUE' | 'TERMINATE' | 'CONTINUE';

/**
 * What happens to ticks that came due while nothing could fire them (every
 * node down, a failover, a pause). Ballerina's meanings, made cluster-wide:
 *
 * - `WAIT` (default): every missed tick fires (late), in order; none is lost.
 * - `IGNORE`: only the latest due tick fires; the earlier missed ones are
 *   skipped (counted in `skippedCount`, never materialised).
 * - `LOG_AND_IGNORE`: as `IGNORE`, and the firer logs the skipped ticks.
 *
 * `maxCount` counts fired ticks, not skipped ones (as Quartz, under Ballerina,
 * keeps the repeat count on a misfire).
 */
export type WaitingPolicy = 'WAIT' | 'IGNORE' | 'LOG_AND_IGNORE';

export interface TaskPolicy {
  /** @default 'LOG_AND_TERMINATE' */
  readonly errorPolicy: ErrorPolicy;
  /** @default 'WAIT' */
  readonly waitingPolicy: WaitingPolicy;
}

export type BackoffStrategy = 'FIXED' | 'EXPONENTIAL';

/**
 * Retries of a tick's task (Ballerina's `retryConfig`, durations in ms). The
 * task gets `maxAttempts + 1` attempts; the delay before retry `k` (1-based)
 * is `retryIntervalMs` (FIXED) or `retryIntervalMs * 2^(k-1)` capped at
 * `maxIntervalMs` (EXPONENTIAL).
 */
export interface RetryConfig {
  /** Retries after the first attempt. */
  readonly maxAttempts: number;
  /** @default 1000 */
  readonly retryIntervalMs: number;
  /** @default 'FIXED' */
  readonly backoffStrategy: BackoffStrategy;
  /** @default max(60000, retryIntervalMs) */
  readonly maxIntervalMs: number;
}

/** The task each tick becomes. */
export interface ScheduleTaskInput {
  readonly type: string;
  readonly payload?: Json;
  /** @default 'default' */
  readonly queue?: string;
  /** @default 0 */
  readonly priority?: number;
  /** All attempts of the task; give this or `retryConfig.maxAttempts`. @default 5 */
  readonly maxAttempts?: number;
}

export interface ScheduleInput {
  /** Ballerina's job id. Creating an id that exists returns it unchanged. @default a UUID */
  readonly id?: string;
  readonly groupId: string;
  readonly task: ScheduleTaskInput;
  readonly trigger: ScheduleTriggerInput;
  readonly retryConfig?: Partial<RetryConfig>;
  readonly taskPolicy?: Partial<TaskPolicy>;
}

/** `active`: fires when due; `paused`: durable pause; `finished`: no more ticks. */
export type ScheduleState = 'active' | 'paused' | 'finished';

export interface Schedule {
  readonly id: string;
  readonly groupId: string;
  readonly task: {
    readonly type: string;
    readonly queue: string;
    readonly payload: Json;
    readonly priority: number;
    readonly maxAttempts: number;
  };
  readonly trigger: ScheduleTrigger;
  readonly retryConfig: RetryConfig | null;
  readonly taskPolicy: TaskPolicy;
  readonly anchorAt: Date;
  /** Null once finished. */
  readonly nextDueAt: Date | null;
  /** Ticks materialised, cluster-wide. */
  readonly firedCount: number;
  /** Ticks skipped by IGNORE / LOG_AND_IGNORE. */
  readonly skippedCount: number;
  readonly paused: boolean;
  readonly state: ScheduleState;
  readonly endReason: 'completed' | 'terminated' | null;
  readonly endedAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface FireOptions {
  readonly groupId: string;
  /** Fire what is due up to this instant (simulated time). @default PostgreSQL's now() */
  readonly now?: Date;
  /** Schedules per call. */
  readonly limit: number;
  /** Ticks per schedule per call (a WAIT backlog drains over several calls). @default 100 */
  readonly maxTicksPerSchedule?: number;
  /** Leader-only: refused unless `term` is the group's current term. */
  readonly fence?: Fence;
}

export interface FiredTick {
  readonly dueAt: Date;
  readonly taskId: TaskId;
}

export interface FiredSchedule {
  readonly scheduleId: string;
  /** The queue of the schedule's tasks (to wake its workers). */
  readonly queue: string;
  readonly ticks: readonly FiredTick[];
  /** Ticks of this call that another firer had already materialised. */
  readonly duplicates: number;
  /** Missed ticks skipped by IGNORE / LOG_AND_IGNORE. */
  readonly skipped: number;
  readonly waitingPolicy: WaitingPolicy;
  /** LOG_AND_IGNORE skipped ticks: the caller logs them. */
  readonly log: boolean;
  readonly nextDueAt: Date | null;
  readonly finished: boolean;
}

export type FireOutcome =
  | {
      readonly ok: true;
      readonly schedules: readonly FiredSchedule[];
      readonly fired: number;
      readonly skipped: number;
      /** The instant due times were compared with. */
      readonly until: Date;
      /** `limit` schedules were due: call again at once. */
      readonly more: boolean;
    }
  | { readonly ok: false; readonly reason: 'stale_term'; readonly currentTerm: number };

/** What `onTickFailed` did. */
export interface TickFailedOutcome {
  readonly scheduleId: string;
  readonly dueAt: Date;
  readonly errorPolicy: ErrorPolicy;
  /** `terminated`: this call ended the schedule; `continued`: it keeps firing; `already_ended`. */
  readonly action: 'terminated' | 'continued' | 'already_ended';
  /** LOG_AND_*: the caller logs the failure. */
  readonly log: boolean;
}
