/**
 * The schedule calendar: due times of one-time, interval and cron triggers,
 * computed from the schedule itself (its anchor and trigger), never from when
 * the last run finished. Pure: no clock, no I/O; the store passes the times.
 *
 * Cron uses croner with the schedule's IANA time zone. Across daylight-saving
 * changes an instant never repeats or goes missing: in the hour that is
 * repeated (autumn) a wall-clock time fires once, at its first occurrence; a
 * wall-clock time inside the hour that is skipped (spring) fires once, at the
 * first valid instant after the gap (e.g. 02:30 -> 03:00 in Europe/Berlin).
 * Hourly expressions keep firing every real hour.
 */
import { Cron } from 'croner';
import {
  InvalidArgumentError,
  type LatestDue,
  type ScheduleCalendar,
  type ScheduleTrigger,
} from '@baton/store';

/**
 * Missed cron ticks counted one by one before `latest` jumps to the last one
 * (the count, only logged, is then a lower bound). Each step is a croner
 * search of about 40 µs, and `latest` runs inside the firer's fenced
 * transaction for up to 100 schedules at once: 50 keep a schedule to about
 * 2 ms (1,000 took 40 ms, and 100 such schedules 4 s: past the
 * transaction's idle limit, so no schedule of the group ever fired).
 */
export const MAX_CRON_CATCH_UP = 50;

const CRON_CACHE_SIZE = 1000;
const cronCache = new Map<string, Cron>();

/** True for a time zone name the runtime's Intl knows (IANA names, 'UTC'). */
export function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** A parsed cron expression in a time zone; throws `InvalidArgumentError` naming the field. */
export function parseCron(expression: string, timeZone: string): Cron {
  const key = `${timeZone}\u0000${expression}`;
  const cached = cronCache.get(key);
  if (cached) return cached;
  if (!isTimeZone(timeZone)) {
    throw new InvalidArgumentError('trigger.timeZone', 'is not a known IANA time zone', timeZone);
  }
  let cron: Cron;
  try {
    // 'no-wildcard': a time with no wildcard in its second, minute and hour
    // fields (lists and ranges included: '0,30 2 * * *', '0 1-3 * * *') is a
    // fixed wall-clock time, kept across daylight-saving changes as the
    // header says, as Vixie cron does. croner's default keeps only
    // single-value fields so, and dropped or doubled such ticks.
    cron = new Cron(expression, { timezone: timeZone, paused: true, fixedTimeRule: 'no-wildcard' });
  } catch (error) {
    throw new InvalidArgumentError(
      'trigger.expression',
      `is not a valid cron expression (${(error as Error).message})`,
      expression,
    );
  }
  if (cronCache.size >= CRON_CACHE_SIZE) {
    const oldest = cronCache.keys().next();
    if (!oldest.done) cronCache.delete(oldest.value);
  }
  cronCache.set(key, cron);
  return cron;
}

const ms = (d: Date) => d.getTime();
const max = (a: Date, b: Date) => (ms(a) >= ms(b) ? a : b);

function cronOf(t: ScheduleTrigger & { kind: 'cron' }): Cron {
  return parseCron(t.expression, t.timeZone);
}

/** The first cron time at or after `from` (croner's nextRun is strictly after, to the second). */
function cronAtOrAfter(cron: Cron, from: Date): Date | null {
  return cron.nextRun(new Date(ms(from) - 1));
}

export const scheduleCalendar: ScheduleCalendar = {
  validate(trigger) {
    if (trigger.kind === 'cron') cronOf(trigger);
    if (trigger.kind === 'interval' && !(trigger.intervalMs >= 1)) {
      throw new InvalidArgumentError('trigger.intervalMs', 'must be positive', trigger.intervalMs);
    }
  },

  atOrAfter(trigger, anchor, from) {
    switch (trigger.kind) {
      case 'once':
        return ms(trigger.at) >= ms(from) ? trigger.at : null;
      case 'interval': {
        const n = Math.max(0, Math.ceil((ms(from) - ms(anchor)) / trigger.intervalMs));
        return new Date(ms(anchor) + n * trigger.intervalMs);
      }
      case 'cron':
        return cronAtOrAfter(cronOf(trigger), max(from, anchor));
    }
  },

  after(trigger, anchor, after) {
    switch (trigger.kind) {
      case 'once':
        return ms(after) < ms(trigger.at) ? trigger.at : null;
      case 'interval': {
        if (ms(after) < ms(anchor)) return anchor;
        const n = Math.floor((ms(after) - ms(anchor)) / trigger.intervalMs) + 1;
        return new Date(ms(anchor) + n * trigger.intervalMs);
      }
      case 'cron': {
        const cron = cronOf(trigger);
        return ms(after) < ms(anchor) ? cronAtOrAfter(cron, anchor) : cron.nextRun(after);
      }
    }
  },

  latest(trigger, anchor, from, until): LatestDue {
    switch (trigger.kind) {
      case 'once':
        return { due: from, passed: 0 };
      case 'interval': {
        const i = trigger.intervalMs;
        const nFrom = Math.round((ms(from) - ms(anchor)) / i);
        const nUntil = Math.max(nFrom, Math.floor((ms(until) - ms(anchor)) / i));
        return { due: new Date(ms(anchor) + nUntil * i), passed: nUntil - nFrom };
      }
      case 'cron': {
        const cron = cronOf(trigger);
        let due = from;
        let passed = 0;
        while (passed < MAX_CRON_CATCH_UP) {
          const next = cron.nextRun(due);
          if (next === null || ms(next) > ms(until)) return { due, passed };
          due = next;
          passed++;
        }
        const last = cron.previousRuns(1, new Date(ms(until) + 1))[0];
        return { due: last && ms(last) > ms(due) ? last : due, passed };
      }
    }
  },
};

/**
 * The first `count` due times of a trigger at or after `from` (for a
 * preview, a CLI, or tests). `maxCount` and `endTime` are applied.
 */
export function upcoming(
  trigger: ScheduleTrigger,
  anchor: Date,
  from: Date,
  count: number,
): Date[] {
  const out: Date[] = [];
  const limit = trigger.kind === 'once' ? 1 : trigger.maxCount === -1 ? count : trigger.maxCount;
  const end = trigger.kind === 'once' ? null : trigger.endTime;
  let due = scheduleCalendar.atOrAfter(trigger, anchor, from);
  while (due !== null && out.length < Math.min(count, limit) && (!end || ms(due) <= ms(end))) {
    out.push(due);
    due = scheduleCalendar.after(trigger, anchor, due);
  }
  return out;
}
