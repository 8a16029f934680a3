import { describe, expect, it } from 'vitest';
import {
  createStore,
  InvalidArgumentError,
  PayloadTooLargeError,
  type EnqueueInput,
} from '../src/index.js';
import { useStore } from './helpers.js';

const ctx = useStore({ maxPayloadBytes: 1024 });

async function taskCount(): Promise<number> {
  const { rows } = await ctx.store.pool.query<{ n: number }>(
    'select count(*)::int as n from baton.tasks',
  );
  return rows[0]!.n;
}

const bad: [string, unknown, string, string][] = [
  ['a type that is not a name', { type: 'has space' }, 'type', 'INVALID_ARGUMENT'],
  ['an empty type', { type: '' }, 'type', 'INVALID_ARGUMENT'],
  ['a type starting with a dot', { type: '.x' }, 'type', 'INVALID_ARGUMENT'],
  ['a subject wildcard as type', { type: 'email.>' }, 'type', 'INVALID_ARGUMENT'],
  ['a negative maxAttempts', { type: 'ok', maxAttempts: -1 }, 'maxAttempts', 'INVALID_ARGUMENT'],
  ['a non-integer priority', { type: 'ok', priority: 1.5 }, 'priority', 'INVALID_ARGUMENT'],
  ['a string priority', { type: 'ok', priority: '3' }, 'priority', 'INVALID_ARGUMENT'],
  ['a negative delay', { type: 'ok', delayMs: -5 }, 'delayMs', 'INVALID_ARGUMENT'],
  ['runAt not a date', { type: 'ok', runAt: 'tomorrow-ish' }, 'runAt', 'INVALID_ARGUMENT'],
  [
    'runAt a day that does not exist',
    { type: 'ok', runAt: '2027-02-30T09:00:00Z' },
    'runAt',
    'INVALID_ARGUMENT',
  ],
  [
    'runAt without an offset (whose local time?)',
    { type: 'ok', runAt: '2027-02-01T09:00:00' },
    'runAt',
    'INVALID_ARGUMENT',
  ],
  [
    'runAt and delayMs together',
    { type: 'ok', runAt: new Date(), delayMs: 5 },
    'runAt',
    'INVALID_ARGUMENT',
  ],
  ['a queue with a dot', { type: 'ok', queue: 'a.b' }, 'queue', 'INVALID_ARGUMENT'],
  ['an unknown option', { type: 'ok', retries: 3 }, 'retries', 'INVALID_ARGUMENT'],
  [
    'an empty idempotency key',
    { type: 'ok', idempotencyKey: '' },
    'idempotencyKey',
    'INVALID_ARGUMENT',
  ],
  [
    'an oversize payload',
    { type: 'ok', payload: 'x'.repeat(2000) },
    'payload',
    'PAYLOAD_TOO_LARGE',
  ],
  ['a payload with NUL', { type: 'ok', payload: 'a\u0000b' }, 'payload', 'INVALID_ARGUMENT'],
  // What jsonb or timestamptz would refuse is refused first, naming where it is.
  [
    'a NUL deep in the payload',
    { type: 'ok', payload: { a: { b: [1, 'x\u0000'] } } },
    'payload.a.b[1]',
    'INVALID_ARGUMENT',
  ],
  [
    'a lone surrogate in the payload',
    { type: 'ok', payload: { name: 'x\ud800' } },
    'payload.name',
    'INVALID_ARGUMENT',
  ],
  [
    'a NUL in a payload key',
    { type: 'ok', payload: { 'k\u0000': 1 } },
    'payload.k\u0000',
    'INVALID_ARGUMENT',
  ],
  [
    'a number that is not finite',
    { type: 'ok', payload: { n: Number.POSITIVE_INFINITY } },
    'payload.n',
    'INVALID_ARGUMENT',
  ],
  [
    'an idempotency key with a lone surrogate',
    { type: 'ok', idempotencyKey: 'k\udc00' },
    'idempotencyKey',
    'INVALID_ARGUMENT',
  ],
  [
    'an idempotency key with NUL',
    { type: 'ok', idempotencyKey: 'k\u0000' },
    'idempotencyKey',
    'INVALID_ARGUMENT',
  ],
  [
    'runAt before PostgreSQL can store it',
    { type: 'ok', runAt: '-010000-01-01T00:00:00Z' },
    'runAt',
    'INVALID_ARGUMENT',
  ],
  [
    'a payload that is not JSON',
    { type: 'ok', payload: { n: 10n } },
    'payload',
    'INVALID_ARGUMENT',
  ],
];

describe('bad input gets a typed error naming the field, and nothing is written', () => {
  it.each(bad)('%s', async (_name, input, field, code) => {
    const before = await taskCount();
    const error = await ctx.store.tasks.enqueue(input as EnqueueInput).catch((e: unknown) => e);
    expect(error).toMatchObject({ code });
    expect((error as InvalidArgumentError).fields.field).toBe(field);
    expect((error as Error).message).toContain(field);
    expect(await taskCount()).toBe(before);
  });

  it('one bad task in a batch rejects the whole batch, naming its index', async () => {
    const before = await taskCount();
    const error = await ctx.store.tasks
      .enqueueMany([{ type: 'ok' }, { type: 'ok', maxAttempts: 0 }, { type: 'ok' }])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).field).toBe('tasks[1].maxAttempts');
    expect(await taskCount()).toBe(before);
  });

  it('stores text that only looks like an escape (a backslash, then u0000) as it is', async () => {
    const payload = { text: 'a literal \\u0000 and \\ud800', pair: '\ud83d\ude00' };
    const { id } = await ctx.store.tasks.enqueue({ type: 'ok', payload });
    expect((await ctx.store.tasks.get(id))!.payload).toEqual(payload);
  });

  it('the size limit is configurable and reported in the error', async () => {
    const error = await ctx.store.tasks
      .enqueue({ type: 'ok', payload: 'y'.repeat(1100) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect((error as PayloadTooLargeError).fields).toMatchObject({ limit: 1024 });
  });

  it('bad store options fail at start with a message naming the option', () => {
    expect(() => createStore({ pool: ctx.store.pool, schema: 'Bad-Schema' })).toThrow(/schema/);
    expect(() => createStore({ pool: ctx.store.pool, maxPayloadBytes: 0 })).toThrow(
      /maxPayloadBytes/,
    );
    expect(() => createStore({ pool: ctx.store.pool, backoff: { baseMs: 10, maxMs: 5 } })).toThrow(
      /backoff.maxMs/,
    );
    expect(() => createStore({})).toThrow(/connection/);
  });

  it('bad ids and list filters are refused by name', async () => {
    await expect(ctx.store.tasks.get('abc')).rejects.toMatchObject({ fields: { field: 'id' } });
    // Above PostgreSQL's bigint: refused by name, not a raw "out of range" database error.
    await expect(ctx.store.tasks.get('9223372036854775808')).rejects.toMatchObject({
      fields: { field: 'id' },
    });
    expect(await ctx.store.tasks.get('9223372036854775807')).toBeNull();
    await expect(ctx.store.tasks.list({ status: 'done' as never })).rejects.toMatchObject({
      fields: { field: 'status' },
    });
    await expect(ctx.store.tasks.list({ limit: 0 })).rejects.toMatchObject({
      fields: { field: 'limit' },
    });
  });
});
