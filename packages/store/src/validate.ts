import { InvalidArgumentError, PayloadTooLargeError } from './errors.js';
import { JsonValueError, strictJson, unstorableText } from './json.js';
import type { EnqueueInput } from './types.js';

/** Task type names: dot-separated tokens, usable as NATS subject tokens. */
export const TYPE_NAME = /^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/;
/** Queue names: one token. */
export const QUEUE_NAME = /^[A-Za-z0-9_-]+$/;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const MAX_ATTEMPTS_LIMIT = 1000;
/** The longest idempotency key. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

export const ENQUEUE_FIELDS: ReadonlySet<string> = new Set([
  'type',
  'payload',
  'queue',
  'priority',
  'runAt',
  'delayMs',
  'maxAttempts',
  'idempotencyKey',
]);

/** An enqueue ready for SQL: every field checked, the payload serialised once. */
export interface ValidEnqueue {
  readonly type: string;
  readonly queue: string;
  readonly payloadJson: string;
  readonly priority: number;
  readonly runAt: Date | null;
  readonly delayMs: number;
  readonly maxAttempts: number;
  readonly idempotencyKey: string | null;
}

export interface EnqueueLimits {
  readonly maxPayloadBytes: number;
  readonly defaultMaxAttempts: number;
}

function integer(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new InvalidArgumentError(field, 'must be an integer', value);
  }
  if (value < min || value > max) {
    throw new InvalidArgumentError(field, `must be between ${min} and ${max}`, value);
  }
  return value;
}

function name(field: string, value: unknown, pattern: RegExp, max: number): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(field, 'must be a non-empty string', value);
  }
  if (value.length > max) {
    throw new InvalidArgumentError(field, `must be at most ${max} characters`, value);
  }
  if (!pattern.test(value)) {
    throw new InvalidArgumentError(field, `must match ${String(pattern)}`, value);
  }
  return value;
}

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

/** A `date` PostgreSQL can store. */
function runAtDate(field: string, value: unknown): Date {
  const d = date(field, value);
  const year = d.getUTCFullYear();
  if (year < 1 || year > 9999) {
    throw new InvalidArgumentError(field, 'must be between the years 1 and 9999', value);
  }
  return d;
}

/** Checks an enqueue and returns it normalised, or throws a typed error naming the field. */
export function validateEnqueue(
  input: EnqueueInput<unknown>,
  limits: EnqueueLimits,
  prefix = '',
): ValidEnqueue {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidArgumentError(prefix || 'task', 'must be an object', input);
  }
  for (const key of Object.keys(input)) {
    if (!ENQUEUE_FIELDS.has(key)) {
      throw new InvalidArgumentError(`${prefix}${key}`, 'is not a known option', undefined);
    }
  }
  const type = name(`${prefix}type`, input.type, TYPE_NAME, 128);
  const queue =
    input.queue === undefined ? 'default' : name(`${prefix}queue`, input.queue, QUEUE_NAME, 64);
  const priority =
    input.priority === undefined
      ? 0
      : integer(`${prefix}priority`, input.priority, INT32_MIN, INT32_MAX);
  const maxAttempts =
    input.maxAttempts === undefined
      ? limits.defaultMaxAttempts
      : integer(`${prefix}maxAttempts`, input.maxAttempts, 1, MAX_ATTEMPTS_LIMIT);
  if (input.runAt !== undefined && input.delayMs !== undefined) {
    throw new InvalidArgumentError(
      `${prefix}runAt`,
      'give runAt or delayMs, not both',
      input.runAt,
    );
  }
  const runAt = input.runAt === undefined ? null : runAtDate(`${prefix}runAt`, input.runAt);
  const delayMs =
    input.delayMs === undefined ? 0 : integer(`${prefix}delayMs`, input.delayMs, 0, INT32_MAX);
  let idempotencyKey: string | null = null;
  if (input.idempotencyKey !== undefined) {
    const k: unknown = input.idempotencyKey;
    if (typeof k !== 'string' || k.length === 0 || k.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
      throw new InvalidArgumentError(
        `${prefix}idempotencyKey`,
        `must be a string of 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`,
        k,
      );
    }
    const problem = unstorableText(k);
    if (problem) {
      throw new InvalidArgumentError(`${prefix}idempotencyKey`, `must not contain ${problem}`, k);
    }
    idempotencyKey = k;
  }
  let payloadJson: string | undefined;
  try {
    payloadJson = strictJson(input.payload === undefined ? null : input.payload);
  } catch (error) {
    if (error instanceof JsonValueError) {
      throw new InvalidArgumentError(`${prefix}payload${error.path}`, error.problem);
    }
    throw new InvalidArgumentError(
      `${prefix}payload`,
      `must be JSON-serialisable (${(error as Error).message})`,
    );
  }
  if (payloadJson === undefined) {
    throw new InvalidArgumentError(`${prefix}payload`, 'must be JSON-serialisable');
  }
  const size = Buffer.byteLength(payloadJson, 'utf8');
  if (size > limits.maxPayloadBytes) {
    throw new PayloadTooLargeError(`${prefix}payload`, size, limits.maxPayloadBytes);
  }
  return { type, queue, payloadJson, priority, runAt, delayMs, maxAttempts, idempotencyKey };
}
