/**
 * Schedules: the `ScheduleStore` (create, read, pause/resume, unschedule,
 * and the firing step). The glossary is in `schedules.types.ts`; validation
 * in `schedules.validate.ts`; tick planning in `schedules.plan.ts`.
 *
 * Times: "now" is PostgreSQL's `now()`, never a node's clock.
 */
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { BatonError, InvalidArgumentError } from './errors.js';
import type { LeadershipStore } from './leadership.js';
import { quoteSchema } from './schema.js';
import { planTicks, tickKey, type ScheduleCalendar } from './schedules.plan.js';
import { specJson, toSchedule, type ScheduleRow } from './schedules.row.js';
import { scheduleSql } from './schedules.sql.js';
import type {
  ErrorPolicy,
  FireOptions,
  FireOutcome,
  FiredSchedule,
  FiredTick,
  Schedule,
  ScheduleInput,
  ScheduleState,
  TickFailedOutcome,
} from './schedules.types.js';
import {
  SCHEDULE_ID,
  TASK_FIELDS,
  TOP_FIELDS,
  int,
  object,
  oneOf,
  validatePolicy,
  validateRetry,
  validateTrigger,
} from './schedules.validate.js';
import type { Store } from './store.js';
import type { TaskStore } from './tasks.js';
import type { TaskId } from './types.js';
import { date } from './validate.js';

/** Most milliseconds of tick planning in one firing round (see #fire). */
const PLAN_BUDGET_MS = 50;

/** Pause, resume or unschedule of an id that does not exist. */
export class ScheduleNotFoundError extends BatonError {
  constructor(id: string) {
    super('SCHEDULE_NOT_FOUND', `schedule ${id} does not exist`, { id });
  }
}

export interface ScheduleStoreDeps {
  readonly tasks: TaskStore;
  readonly leadership: LeadershipStore;
  readonly calendar: ScheduleCalendar;
}

/**
 * The schedule aggregate: create, read, pause/resume, unschedule, and the
 * firing step. Each operation is one guarded statement or one transaction.
 */
export class ScheduleStore {
  readonly #pool: Pool;
  readonly #sql: ReturnType<typeof scheduleSql>;
  readonly #deps: ScheduleStoreDeps;

  constructor(pool: Pool, quotedSchema: string, deps: ScheduleStoreDeps) {
    this.#pool = pool;
    this.#sql = scheduleSql(quotedSchema);
    this.#deps = deps;
  }

  /**
   * Creates a schedule, or returns the existing one with the same `id`
   * (`created: false`; nothing is validated against the clock then, so a
   * retried create of a one-time job stays idempotent). Throws
   * `InvalidArgumentError` naming the field.
   *
   * @example
   * await schedules.create({
   *   groupId: 'billing',
   *   task: { type: 'invoice.send', payload: { batch: 7 } },
   *   trigger: { kind: 'interval', intervalMs: 60_000, maxCount: 10 },
   *   taskPolicy: { waitingPolicy: 'IGNORE' },
   * });
   */
  async create(input: ScheduleInput): Promise<{ schedule: Schedule; created: boolean }> {
    object('schedule', input, TOP_FIELDS);
    const id = input.id ?? randomUUID();
    if (typeof id !== 'string' || !SCHEDULE_ID.test(id)) {
      throw new InvalidArgumentError('id', `must match ${String(SCHEDULE_ID)}`, id);
    }
    const groupId: unknown = input.groupId;
    if (typeof groupId !== 'string' || groupId.length === 0 || groupId.length > 255) {
      throw new InvalidArgumentError('groupId', 'must be a string of 1 to 255 characters', groupId);
    }
    object('task', input.task, TASK_FIELDS);
    const defaultAttempts = this.#deps.tasks.validate({ type: 'schedule' }).maxAttempts;
    const retry = validateRetry(input.retryConfig, input.task.maxAttempts, defaultAttempts);
    const task = this.#deps.tasks.validate(
      { ...input.task, ...(retry ? { maxAttempts: retry.maxAttempts + 1 } : {}) },
      'task.',
    );
    const policy = validatePolicy(input.taskPolicy);

    const existing = input.id === undefined ? null : await this.get(id);
    if (existing) return { schedule: sameGroup(existing, groupId), created: false };
    const now = (await this.#pool.query<{ now: Date }>(this.#sql.now)).rows[0]!.now;
    const trigger = validateTrigger(input.trigger, now, this.#deps.calendar);
    const anchor = trigger.kind === 'once' ? trigger.at : (trigger.startTime ?? now);
    const first = this.#deps.calendar.atOrAfter(trigger, anchor, now);
    const endTime = trigger.kind === 'once' ? null : trigger.endTime;
    if (first === null || (endTime && first.getTime() > endTime.getTime())) {
      throw new InvalidArgumentError('trigger', 'never comes due (no due time before its end)');
    }
    const { rows } = await this.#pool.query<ScheduleRow>(this.#sql.insert, [
      id,
      groupId,
      task.type,
      task.queue,
      task.payloadJson,
      trigger.kind,
      specJson(trigger),
      anchor,
      task.priority,
      task.maxAttempts,
      retry ? JSON.stringify(retry) : null,
      policy.errorPolicy,
      policy.waitingPolicy,
      first,
    ]);
    if (rows[0]) return { schedule: toSchedule(rows[0]), created: true };
    const raced = await this.get(id);
    if (!raced) throw new ScheduleNotFoundError(id);
    return { schedule: sameGroup(raced, groupId), created: false };
  }

  /** The schedule `id`; with `groupId`, only if it is that group's. */
  async get(id: string, groupId?: string): Promise<Schedule | null> {
    const { rows } = await this.#pool.query<ScheduleRow>(this.#sql.get, [id, groupId ?? null]);
    return rows[0] ? toSchedule(rows[0]) : null;
  }

  /** A group's schedules by id, optionally of one state. */
  async list(
    groupId: string,
    opts: { state?: ScheduleState; limit?: number } = {},
  ): Promise<Schedule[]> {
    const state =
      opts.state === undefined
        ? null
        : oneOf<ScheduleState>('state', opts.state, ['active', 'paused', 'finished']);
    const limit = int('limit', opts.limit ?? 1000, 1, 10_000);
    const { rows } = await this.#pool.query<ScheduleRow>(this.#sql.list, [groupId, state, limit]);
    return rows.map(toSchedule);
  }

  /** Ballerina's `getRunningJobs`: the group's active schedules (not paused, not finished). */
  async getRunningJobs(groupId: string): Promise<Schedule[]> {
    return this.list(groupId, { state: 'active' });
  }

  /** Durable, cluster-wide: no firer fires a paused schedule. Throws `ScheduleNotFoundError`. */
  async pause(id: string, groupId?: string): Promise<Schedule> {
    return this.#setPaused(id, true, groupId);
  }

  /** Missed ticks then follow the waiting policy. Throws `ScheduleNotFoundError`. */
  async resume(id: string, groupId?: string): Promise<Schedule> {
    return this.#setPaused(id, false, groupId);
  }

  /** Pauses every schedule of the group; returns how many changed. */
  async pauseAll(groupId: string): Promise<number> {
    return (await this.#pool.query(this.#sql.setPausedAll, [groupId, true])).rowCount ?? 0;
  }

  async resumeAll(groupId: string): Promise<number> {
    return (await this.#pool.query(this.#sql.setPausedAll, [groupId, false])).rowCount ?? 0;
  }

  /**
   * Deletes the schedule and its tick rows. Tasks already materialised stay
   * (they are tasks), but no longer belong to a schedule: a schedule created
   * later under the same id is another one, whose error policy and retry
   * config they do not reach.
   */
  async unschedule(id: string, groupId?: string): Promise<void> {
    const client = await this.#pool.connect();
    let found: boolean;
    try {
      await client.query('begin');
      // The delete may wait for a firer holding the row; once it goes on, the
      // ticks that firer committed are there to delete. One statement would
      // not see them: its snapshot is from before the wait.
      found = (await client.query(this.#sql.delete, [id, groupId ?? null])).rows.length > 0;
      if (found) await client.query(this.#sql.deleteTicks, [id]);
      await client.query('commit');
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    if (!found) throw new ScheduleNotFoundError(id);
  }

  /** The earliest due time of the group's active schedules, and how far away it is on PostgreSQL's clock. */
  async nextWakeup(groupId: string): Promise<{ dueAt: Date; inMs: number } | null> {
    const { rows } = await this.#pool.query<{ due_at: Date | null; in_ms: string | null }>(
      this.#sql.nextWakeup,
      [groupId],
    );
    const r = rows[0];
    return r?.due_at ? { dueAt: r.due_at, inMs: Math.max(0, Number(r.in_ms)) } : null;
  }

  /**
   * The firing step, in one transaction: locks up to `limit` due schedules
   * (`FOR UPDATE SKIP LOCKED`, so concurrent firers pass each other), plans
   * their ticks by the waiting policy, inserts each tick (unique (schedule,
   * due time): a second firer is harmless) and its task, and advances
   * `next_due_at` and the counts. With `fence`, refused on a stale term.
   */
  async fireDue(opts: FireOptions): Promise<FireOutcome> {
    const limit = int('limit', opts.limit, 1, 10_000);
    const maxTicks = int('maxTicksPerSchedule', opts.maxTicksPerSchedule ?? 100, 1, 100_000);
    const now = opts.now === undefined ? null : date('now', opts.now);
    if (now === null) {
      // Nothing due (the usual answer): no transaction, no fence, no lock.
      const { rows } = await this.#pool.query<{ until: Date; due: boolean }>(this.#sql.anyDue, [
        opts.groupId,
      ]);
      const r = rows[0]!;
      if (!r.due)
        return { ok: true, schedules: [], fired: 0, skipped: 0, until: r.until, more: false };
    }
    const work = (c: PoolClient) => this.#fire(c, opts.groupId, now, limit, maxTicks);
    if (opts.fence) {
      const out = await this.#deps.leadership.fenced(opts.fence, work);
      return out.ok ? out.value : out;
    }
    const client = await this.#pool.connect();
    try {
      await client.query('begin');
      const result = await work(client);
      await client.query('commit');
      return result;
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async #fire(
    c: PoolClient,
    groupId: string,
    now: Date | null,
    limit: number,
    maxTicks: number,
  ): Promise<FireOutcome & { ok: true }> {
    const until = (await c.query<{ until: Date }>(this.#sql.until, [now])).rows[0]!.until;
    const { rows } = await c.query<ScheduleRow>(this.#sql.due, [groupId, until, limit]);
    // Planning is CPU on the node's one thread, inside this transaction: a
    // round plans for at most PLAN_BUDGET_MS, the rest waits for the next
    // round (they are the latest due), so the bearer's renewals keep their
    // pace and the transaction never nears its idle limit.
    const started = performance.now();
    const plans: { s: Schedule; plan: ReturnType<typeof planTicks> }[] = [];
    for (const r of rows) {
      if (plans.length > 0 && performance.now() - started > PLAN_BUDGET_MS) break;
      const s = toSchedule(r);
      plans.push({
        s,
        plan: planTicks({ ...s, nextDueAt: r.next_due_at! }, until, this.#deps.calendar, maxTicks),
      });
    }
    const ids: string[] = [];
    const dues: Date[] = [];
    for (const { s, plan } of plans) {
      for (const d of plan.dueTimes) {
        ids.push(s.id);
        dues.push(d);
      }
    }
    const fired = new Map<string, FiredTick[]>();
    if (ids.length > 0) {
      const inserted = await c.query<{ schedule_id: string; due_at: Date }>(this.#sql.insertTicks, [
        ids,
        dues,
      ]);
      const fresh = inserted.rows;
      if (fresh.length > 0) {
        const linked = await c.query<{ schedule_id: string; due_at: Date; task_id: string }>(
          this.#sql.enqueueTicks,
          [
            fresh.map((t) => t.schedule_id),
            fresh.map((t) => t.due_at),
            fresh.map((t) => tickKey(t.schedule_id, t.due_at)),
          ],
        );
        for (const t of linked.rows) {
          const list = fired.get(t.schedule_id) ?? [];
          list.push({ dueAt: t.due_at, taskId: t.task_id });
          fired.set(t.schedule_id, list);
        }
      }
    }
    if (plans.length > 0) {
      await c.query(this.#sql.advance, [
        plans.map((p) => p.s.id),
        plans.map((p) => p.plan.nextDueAt),
        plans.map((p) => p.plan.dueTimes.length),
        plans.map((p) => p.plan.skipped),
      ]);
    }
    const schedules = plans.map(({ s, plan }): FiredSchedule => {
      const ticks = (fired.get(s.id) ?? []).sort((a, b) => a.dueAt.getTime() - b.dueAt.getTime());
      return {
        scheduleId: s.id,
        queue: s.task.queue,
        ticks,
        duplicates: plan.dueTimes.length - ticks.length,
        skipped: plan.skipped,
        waitingPolicy: s.taskPolicy.waitingPolicy,
        log: s.taskPolicy.waitingPolicy === 'LOG_AND_IGNORE' && plan.skipped > 0,
        nextDueAt: plan.nextDueAt,
        finished: plan.nextDueAt === null,
      };
    });
    return {
      ok: true,
      schedules,
      fired: schedules.reduce((n, s) => n + s.ticks.length, 0),
      skipped: schedules.reduce((n, s) => n + s.skipped, 0),
      until,
      more: rows.length === limit || plans.length < rows.length,
    };
  }

  /**
   * Applies the error policy after a tick's task ended in `dead_letter`: a
   * TERMINATE / LOG_AND_TERMINATE schedule is finished (`endReason:
   * 'terminated'`; tasks already materialised still run), a CONTINUE /
   * LOG_AND_CONTINUE one keeps firing. One guarded statement: it changes
   * nothing unless the task is a tick's and is dead-lettered. Null when the
   * task is no tick of an existing schedule, or not dead-lettered.
   */
  async onTickFailed(taskId: TaskId): Promise<TickFailedOutcome | null> {
    const { rows } = await this.#pool.query<{
      schedule_id: string;
      due_at: Date;
      error_policy: ErrorPolicy | null;
      terminated: boolean;
    }>(this.#sql.onTickFailed, [taskId]);
    const r = rows[0];
    if (!r || r.error_policy === null) return null;
    const terminate = r.error_policy === 'TERMINATE' || r.error_policy === 'LOG_AND_TERMINATE';
    return {
      scheduleId: r.schedule_id,
      dueAt: r.due_at,
      errorPolicy: r.error_policy,
      action: !terminate ? 'continued' : r.terminated ? 'terminated' : 'already_ended',
      log: r.error_policy.startsWith('LOG_AND_'),
    };
  }

  /** The schedule and due time a task was materialised for (e.g. to apply its retryConfig on failure). */
  async forTask(taskId: TaskId): Promise<{ schedule: Schedule; dueAt: Date } | null> {
    const { rows } = await this.#pool.query<ScheduleRow & { tick_due_at: Date }>(this.#sql.byTask, [
      taskId,
    ]);
    const r = rows[0];
    return r ? { schedule: toSchedule(r), dueAt: r.tick_due_at } : null;
  }

  /** The materialised ticks of a schedule, oldest first. */
  async ticks(
    scheduleId: string,
  ): Promise<{ dueAt: Date; taskId: TaskId | null; firedAt: Date }[]> {
    const { rows } = await this.#pool.query<{
      due_at: Date;
      task_id: string | null;
      fired_at: Date;
    }>(this.#sql.ticks, [scheduleId]);
    return rows.map((r) => ({ dueAt: r.due_at, taskId: r.task_id, firedAt: r.fired_at }));
  }

  async #setPaused(id: string, paused: boolean, groupId?: string): Promise<Schedule> {
    const { rows } = await this.#pool.query<ScheduleRow>(this.#sql.setPaused, [
      id,
      paused,
      groupId ?? null,
    ]);
    if (!rows[0]) throw new ScheduleNotFoundError(id);
    return toSchedule(rows[0]);
  }
}

/**
 * A schedule found under the id asked for, if it is `groupId`'s: ids are
 * unique across groups, and another group's schedule is not this one.
 */
function sameGroup(schedule: Schedule, groupId: string): Schedule {
  if (schedule.groupId !== groupId) {
    throw new InvalidArgumentError(
      'id',
      `is taken by a schedule of another group (schedule ids are unique across groups)`,
      schedule.id,
    );
  }
  return schedule;
}

/** The schedule store of an open store, with the runtime's calendar (cron). */
export function createScheduleStore(store: Store, calendar: ScheduleCalendar): ScheduleStore {
  return new ScheduleStore(store.pool, quoteSchema(store.schema), {
    tasks: store.tasks,
    leadership: store.leadership,
    calendar,
  });
}
