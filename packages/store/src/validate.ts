import { InvalidArgumentError, PayloadTooLargeError } from './errors.js';
import { JsonValueError, strictJson, unstorableText } from './json.js';
import { date } from './schedules.validate.js';
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

function runAtDate(field: string, value: unknown): Date {
  // The schedules' strict form: a real date and time with an offset.
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
