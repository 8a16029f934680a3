/**
 * Schedules: input validation. Checks what callers write (a trigger, a task
 * policy, a retry config) and throws `InvalidArgumentError` naming the field.
 */
import { InvalidArgumentError } from './errors.js';
import type { ScheduleCalendar } from './schedules.plan.js';
import type {
  BackoffStrategy,
  ErrorPolicy,
  RetryConfig,
  ScheduleKind,
  ScheduleTrigger,
  TaskPolicy,
  WaitingPolicy,
} from './schedules.types.js';

const ERROR_POLICIES: readonly ErrorPolicy[] = [
  'LOG_AND_TERMINATE',
  'LOG_AND_CONTINUE',
  'TERMINATE',
  'CONTINUE',
];
const WAITING_POLICIES: readonly WaitingPolicy[] = ['WAIT', 'IGNORE', 'LOG_AND_IGNORE'];
export const SCHEDULE_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}$/;
export const TOP_FIELDS = new Set([
  'id',
  'groupId',
  'task',
  'trigger',
  'retryConfig',
  'taskPolicy',
]);
export const TASK_FIELDS: ReadonlySet<string> = new Set([
  'type',
  'payload',
  'queue',
  'priority',
  'maxAttempts',
]);
export const POLICY_FIELDS: ReadonlySet<string> = new Set(['errorPolicy', 'waitingPolicy']);
export const RETRY_FIELDS: ReadonlySet<string> = new Set([
  'maxAttempts',
  'retryIntervalMs',
  'backoffStrategy',
  'maxIntervalMs',
]);
const TRIGGER_FIELDS: Record<ScheduleKind, ReadonlySet<string>> = {
  once: new Set(['kind', 'at']),
  interval: new Set(['kind', 'intervalMs', 'maxCount', 'startTime', 'endTime']),
  cron: new Set(['kind', 'expression', 'timeZone', 'maxCount', 'startTime', 'endTime']),
};

/** A key as written, folded: `timezone`, `time_zone` and `TimeZone` all fold to `timezone`. */
const fold = (key: string) => key.toLowerCase().replace(/[-_]/g, '');

/**
 * The refusal of `key`, an unknown option of `field`: names `field.key`,
 * lists the known options, and suggests the right spelling when `key`
 * differs from one only by case (or by `-` and `_`), or the nested object
 * it belongs in when it is one of `elsewhere`'s (`{ taskPolicy: [...] }`).
 */
export function unknownOption(
  field: string,
  key: string,
  allowed: Iterable<string>,
  elsewhere: Readonly<Record<string, Iterable<string>>> = {},
): InvalidArgumentError {
  const known = [...allowed];
  const like = (k: string) => fold(k) === fold(key);
  let spelled = known.find(like);
  for (const [name, keys] of Object.entries(elsewhere)) {
    const k = spelled === undefined ? [...keys].find(like) : undefined;
    if (k !== undefined) spelled = `${name}.${k}`;
  }
  const suggestion = spelled === undefined ? '' : `, did you mean ${spelled}?`;
  return new InvalidArgumentError(
    `${field}.${key}`,
    `is not a known option${suggestion} (known: ${known.join(', ')})`,
  );
}

export function object(field: string, value: unknown, allowed: ReadonlySet<string>): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(field, 'must be an object', value);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) throw unknownOption(field, key, allowed);
  }
}

/**
 * An ISO 8601 date and time with a `Z` or numeric offset: seconds and their
 * fraction optional, the offset `+hh:mm`, `+hhmm` or `+hh`.
 */
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(?:Z|([+-])(\d{2})(?::?(\d{2}))?)$/;
const DATE_FORM =
  'an ISO 8601 date and time with a Z or numeric offset (e.g. 2027-02-01T09:00:00Z, 2027-02-01T09:00:00.5+01:00)';

/**
 * A `Date`, or a string of the form `DATE_TIME` whose parts are a real
 * date and time (no 30 February, no 24:00): an instant, never read in the
 * process's local zone, never rolled over into the next day or month.
 */
export function date(field: string, value: unknown): Date {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) {
      throw new InvalidArgumentError(
        field,
        'must be a valid Date (this one is Invalid Date)',
        value,
      );
    }
    return value;
  }
  const m = typeof value === 'string' ? DATE_TIME.exec(value) : null;
  if (m === null) throw new InvalidArgumentError(field, `must be a Date or ${DATE_FORM}`, value);
  const part = (i: number) => Number(m[i] ?? 0);
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0] = [1, 2, 3, 4, 5, 6].map(
    part,
  );
  const ms = Number((m[7] ?? '').slice(0, 3).padEnd(3, '0'));
  const [offsetHours, offsetMinutes] = [part(9), part(10)];
  // Built part by part (Date.UTC would read years 0 to 99 as 1900 to 1999),
  // then read back: a part out of range rolls over and no longer matches.
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, ms);
  if (
    d.getUTCFullYear() !== year ||
    d.getUTCMonth() !== month - 1 ||
    d.getUTCDate() !== day ||
    d.getUTCHours() !== hour ||
    d.getUTCMinutes() !== minute ||
    d.getUTCSeconds() !== second ||
    offsetHours > 23 ||
    offsetMinutes > 59
  ) {
    throw new InvalidArgumentError(
      field,
      `is not a real date and time (a day, hour, minute, second or offset out of range); expected ${DATE_FORM}`,
      value,
    );
  }
  const offset = (m[8] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes);
  return new Date(d.getTime() - offset * 60_000);
}

function optionalDate(field: string, value: unknown): Date | null {
  return value === undefined || value === null ? null : date(field, value);
}

/** The longest interval of a recurring schedule: 100 years. */
export const MAX_INTERVAL_MS = 100 * 365.25 * 24 * 3_600_000;

export function int(
  field: string,
  value: unknown,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(field, `must be an integer between ${min} and ${max}`, value);
  }
  return value;
}

export function oneOf<T extends string>(field: string, value: unknown, values: readonly T[]): T {
  if (!values.includes(value as T)) {
    throw new InvalidArgumentError(field, `must be one of ${values.join(', ')}`, value);
  }
  return value as T;
}

/**
 * Checks a trigger against `now` (PostgreSQL's clock in the store), with
 * Ballerina's rules: a one-time time in the future; `maxCount` -1 or at least
 * 1; a positive interval; an end after the start (and after now).
 */
export function validateTrigger(
  input: unknown,
  now: Date,
  calendar: ScheduleCalendar,
): ScheduleTrigger {
  const t = input as Record<string, unknown> | null;
  if (typeof t !== 'object' || t === null)
    throw new InvalidArgumentError('trigger', 'must be an object', t);
  const kind = oneOf<ScheduleKind>('trigger.kind', t['kind'], ['once', 'interval', 'cron']);
  object('trigger', t, TRIGGER_FIELDS[kind]);
  let trigger: ScheduleTrigger;
  if (kind === 'once') {
    const at = date('trigger.at', t['at']);
    if (at.getTime() <= now.getTime()) {
      throw new InvalidArgumentError(
        'trigger.at',
        `must be in the future (now is ${now.toISOString()})`,
        t['at'],
      );
    }
    trigger = { kind, at };
  } else {
    const maxCount =
      t['maxCount'] === undefined ? -1 : int('trigger.maxCount', t['maxCount'], -1, 2 ** 31 - 1);
    if (maxCount === 0)
      throw new InvalidArgumentError('trigger.maxCount', 'must be -1 (unlimited) or at least 1', 0);
    const startTime = optionalDate('trigger.startTime', t['startTime']);
    const endTime = optionalDate('trigger.endTime', t['endTime']);
    if (endTime && startTime && endTime.getTime() <= startTime.getTime()) {
      throw new InvalidArgumentError(
        'trigger.endTime',
        'must be after trigger.startTime',
        t['endTime'],
      );
    }
    if (endTime && endTime.getTime() <= now.getTime()) {
      throw new InvalidArgumentError(
        'trigger.endTime',
        `must be in the future (now is ${now.toISOString()})`,
        t['endTime'],
      );
    }
    if (kind === 'interval') {
      if (typeof t['intervalMs'] === 'number' && t['intervalMs'] <= 0) {
        throw new InvalidArgumentError('trigger.intervalMs', 'must be positive', t['intervalMs']);
      }
      // At most 100 years: a due time must stay a date (JavaScript's end at 275760).
      const intervalMs = int('trigger.intervalMs', t['intervalMs'], 1, MAX_INTERVAL_MS);
      trigger = { kind, intervalMs, maxCount, startTime, endTime };
    } else {
      const expression = t['expression'];
      if (typeof expression !== 'string' || expression.trim() === '' || expression.length > 256) {
        throw new InvalidArgumentError(
          'trigger.expression',
          'must be a cron expression',
          expression,
        );
      }
      const timeZone = t['timeZone'] === undefined ? 'UTC' : t['timeZone'];
      if (typeof timeZone !== 'string' || timeZone === '') {
        throw new InvalidArgumentError(
          'trigger.timeZone',
          'must be an IANA time zone name',
          timeZone,
        );
      }
      trigger = { kind, expression: expression.trim(), timeZone, maxCount, startTime, endTime };
    }
  }
  calendar.validate(trigger);
  return trigger;
}

export function validatePolicy(input: unknown): TaskPolicy {
  if (input === undefined) return { errorPolicy: 'LOG_AND_TERMINATE', waitingPolicy: 'WAIT' };
  object('taskPolicy', input, POLICY_FIELDS);
  const p = input as Partial<TaskPolicy>;
  return {
    errorPolicy:
      p.errorPolicy === undefined
        ? 'LOG_AND_TERMINATE'
        : oneOf('taskPolicy.errorPolicy', p.errorPolicy, ERROR_POLICIES),
    waitingPolicy:
      p.waitingPolicy === undefined
        ? 'WAIT'
        : oneOf('taskPolicy.waitingPolicy', p.waitingPolicy, WAITING_POLICIES),
  };
}

export function validateRetry(
  input: unknown,
  taskMaxAttempts: number | undefined,
  defaultMaxAttempts: number,
): RetryConfig | null {
  if (input === undefined) return null;
  object('retryConfig', input, RETRY_FIELDS);
  const r = input as Partial<RetryConfig>;
  if (r.maxAttempts !== undefined && taskMaxAttempts !== undefined) {
    throw new InvalidArgumentError(
      'retryConfig.maxAttempts',
      'give task.maxAttempts or retryConfig.maxAttempts, not both',
      r.maxAttempts,
    );
  }
  const maxAttempts =
    r.maxAttempts === undefined
      ? (taskMaxAttempts ?? defaultMaxAttempts) - 1
      : int('retryConfig.maxAttempts', r.maxAttempts, 0, 999);
  const retryIntervalMs =
    r.retryIntervalMs === undefined
      ? 1000
      : int('retryConfig.retryIntervalMs', r.retryIntervalMs, 0, 2 ** 31 - 1);
  const backoffStrategy =
    r.backoffStrategy === undefined
      ? 'FIXED'
      : oneOf<BackoffStrategy>('retryConfig.backoffStrategy', r.backoffStrategy, [
          'FIXED',
          'EXPONENTIAL',
        ]);
  const maxIntervalMs =
    r.maxIntervalMs === undefined
      ? Math.max(60_000, retryIntervalMs)
      : int('retryConfig.maxIntervalMs', r.maxIntervalMs, 0, 2 ** 31 - 1);
  if (maxIntervalMs < retryIntervalMs) {
    throw new InvalidArgumentError(
      'retryConfig.maxIntervalMs',
      'must not be smaller than retryConfig.retryIntervalMs',
      maxIntervalMs,
    );
  }
  return { maxAttempts, retryIntervalMs, backoffStrategy, maxIntervalMs };
}
