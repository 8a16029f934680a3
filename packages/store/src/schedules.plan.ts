/**
 * Schedules: tick planning. Which due times to materialise now, computed
 * from the schedule and a `ScheduleCalendar`, and the idempotency key of a
 * tick's task. Pure: no database, no clock.
 */
import type { Schedule, ScheduleTrigger } from './schedules.types.js';

/**
 * The due-time computation the store needs and does not own (cron needs a
 * parser and a time-zone database). Pure; implemented by the runtime.
 * `maxCount` and `endTime` are applied by the store, not the calendar.
 */
export interface ScheduleCalendar {
  /** Throws `InvalidArgumentError` naming the field for a trigger it cannot compute. */
  validate(trigger: ScheduleTrigger): void;
  /** The first due time at or after `from` (and not before the anchor); null: none. */
  atOrAfter(trigger: ScheduleTrigger, anchor: Date, from: Date): Date | null;
  /** The first due time strictly after `after`; null: none. */
  after(trigger: ScheduleTrigger, anchor: Date, after: Date): Date | null;
  /**
   * The latest due time in [`from`, `until`] (`from` is a due time, not after
   * `until`), and how many due times in [`from`, latest) it passes over.
   */
  latest(trigger: ScheduleTrigger, anchor: Date, from: Date, until: Date): LatestDue;
}

export interface LatestDue {
  readonly due: Date;
  readonly passed: number;
}

/** The idempotency key of a tick's task. */
export function tickKey(scheduleId: string, dueAt: Date): string {
  return `schedule:${scheduleId}:${dueAt.toISOString()}`;
}

/**
 * The ticks to materialise now, from the schedule itself (its due time, its
 * anchor and the calendar), never from when the last run finished. Pure.
 */
export function planTicks(
  s: Pick<Schedule, 'trigger' | 'anchorAt' | 'firedCount' | 'taskPolicy'> & {
    readonly nextDueAt: Date;
  },
  until: Date,
  calendar: ScheduleCalendar,
  maxTicks: number,
): { readonly dueTimes: Date[]; readonly skipped: number; readonly nextDueAt: Date | null } {
  const { trigger } = s;
  const maxCount = trigger.kind === 'once' ? 1 : trigger.maxCount;
  const endTime = trigger.kind === 'once' ? null : trigger.endTime;
  const remaining = maxCount === -1 ? Infinity : maxCount - s.firedCount;
  if (remaining <= 0) return { dueTimes: [], skipped: 0, nextDueAt: null };
  const horizon = endTime && endTime.getTime() < until.getTime() ? endTime : until;
  let due: Date | null = s.nextDueAt;
  let skipped = 0;
  if (s.taskPolicy.waitingPolicy !== 'WAIT' && due.getTime() <= horizon.getTime()) {
    const latest = calendar.latest(trigger, s.anchorAt, due, horizon);
    due = latest.due;
    skipped = latest.passed;
  }
  const dueTimes: Date[] = [];
  while (
    due !== null &&
    due.getTime() <= horizon.getTime() &&
    dueTimes.length < remaining &&
    dueTimes.length < maxTicks
  ) {
    dueTimes.push(due);
    due = calendar.after(trigger, s.anchorAt, due);
  }
  const done =
    dueTimes.length >= remaining ||
    due === null ||
    (endTime !== null && due.getTime() > endTime.getTime());
  return { dueTimes, skipped, nextDueAt: done ? null : due };
}
