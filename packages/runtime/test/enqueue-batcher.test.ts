import { useTestDatabase } from '@baton/testkit';
import { createStore, isDataException, type Store } from '@baton/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnqueueBatcher } from '../src/enqueue-batcher.js';
import { isPermanentSubmissionError } from '../src/bus/jetstream.consume.js';
import { messageIdKey } from '../src/bus-factory.js';

const db = useTestDatabase();
const schema = 'batcher';
let store: Store;

beforeAll(async () => {
  store = createStore({ pool: db.pool({ max: 3 }), schema });
  await store.migrate();
  // A value PostgreSQL refuses that validation lets through: a data exception
  // (SQLSTATE 22023) raised by the database itself for a marked payload.
  await store.pool.query(`
    create function ${schema}.refuse_poison() returns trigger language plpgsql as $$
    begin
      if new.payload ? 'poison' then
        raise exception 'poisoned payload' using errcode = '22023';
      end if;
      return new;
    end $$;
    create trigger refuse_poison before insert on ${schema}.tasks
      for each row execute function ${schema}.refuse_poison()`);
});

afterAll(async () => {
  await store.pool.query(`drop schema ${schema} cascade`);
});

describe('the enqueue batcher', () => {
  it('when PostgreSQL refuses a value, fails only that submission, not the batch it was in', async () => {
    const batcher = new EnqueueBatcher(store.tasks);
    // The first goes at once; the next four wait for it and share one INSERT.
    const inputs = [{ n: 1 }, { n: 2 }, { poison: true }, { n: 3 }, { n: 4 }];
    const results = await Promise.allSettled(
      inputs.map((payload) => batcher.enqueue({ type: 'b.t', payload })),
    );
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
    ]);
    const refused = (results[2] as PromiseRejectedResult).reason as Error & { code: string };
    expect(refused.code).toBe('22023');
    const { rows } = await store.pool.query<{ n: string }>(
      `select payload->>'n' as n from ${schema}.tasks order by id`,
    );
    expect(rows.map((r) => r.n)).toEqual(['1', '2', '3', '4']);
    // On the JetStream intake such a message is terminated, not redelivered forever.
    expect(isPermanentSubmissionError(refused)).toBe(true);
  });

  it('tells data exceptions from other database errors', async () => {
    const errorOf = (sql: string) => store.pool.query(sql).catch((e: unknown) => e);
    expect(isDataException(await errorOf(`select 'x'::int`))).toBe(true); // 22P02
    expect(isDataException(await errorOf('select 1 / 0'))).toBe(true); // 22012
    expect(isDataException(await errorOf('select * from no_such_table'))).toBe(false); // 42P01
    expect(isPermanentSubmissionError(await errorOf('select * from no_such_table'))).toBe(false);
  });
});

describe('the key of a stream message with Nats-Msg-Id', () => {
  it('is the id itself, or a digest of an id the store could not take as a key', () => {
    expect(messageIdKey('order-42')).toBe('order-42');
    const long = 'x'.repeat(300);
    expect(messageIdKey(long)).toMatch(/^js:msgid:sha256:[0-9a-f]{64}$/);
    expect(messageIdKey(long)).toBe(messageIdKey(long));
    expect(messageIdKey(`${long}y`)).not.toBe(messageIdKey(long));
    expect(messageIdKey('a\u0000b')).toMatch(/^js:msgid:sha256:/);
    expect(messageIdKey('x'.repeat(255))).toBe('x'.repeat(255));
  });
});
