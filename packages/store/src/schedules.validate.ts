/**
 * Schedules: input validation. Checks what callers write (a trigger, a task
 * policy, a retry config) and throws `InvalidArgumentError` naming the field.
 */
import { InvalidArgumentError } from './errors.js';
import { date, unknownOption } from './validate.js';
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

export function object(field: string, value: unknown, allowed: ReadonlySet<string>): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(field, 'must be an object', value);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) throw unknownOption(field, key, allowed);
  }
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
