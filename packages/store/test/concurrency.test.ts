import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { migrate } from '../src/index.js';
import { useStore } from './helpers.js';

const ctx = useStore();

describe('concurrency', () => {
  it('8 concurrent claimers on 10,000 tasks: every task claimed exactly once, none lost', async () => {
    const { tasks } = ctx.store;
    const inputs = Array.from({ length: 10_000 }, (_, i) => ({ type: 't.race', payload: { i } }));
    for (let i = 0; i < inputs.length; i += 1000)
      await tasks.enqueueMany(inputs.slice(i, i + 1000));

    const claimedBy = new Map<string, number>();
    let duplicates = 0;
    await Promise.all(
      Array.from({ length: 8 }, async (_, claimer) => {
        for (;;) {
          const batch = await tasks.claim({
            owner: `c${claimer}`,
            types: ['t.race'],
            limit: 50,
            leaseMs: 60_000,
          });
          if (batch.length === 0) return;
          for (const t of batch) {
            if (claimedBy.has(t.id)) duplicates++;
            claimedBy.set(t.id, claimer);
          }
          await tasks.markRunning(batch);
          await tasks.completeMany(batch.map((t) => ({ id: t.id, attempt: t.attempt })));
        }
      }),
    );
    expect(duplicates).toBe(0);
    expect(claimedBy.size).toBe(10_000);
    expect(new Set(claimedBy.values()).size).toBeGreaterThan(1);
    const { rows } = await ctx.store.pool.query<{ status: string; n: number; max_attempt: number }>(
      `select status, count(*)::int as n, max(attempt) as max_attempt from baton.tasks where type = 't.race' group by status`,
    );
    expect(rows).toEqual([{ status: 'completed', n: 10_000, max_attempt: 1 }]);
  });

  it('50 concurrent enqueues with one idempotency key: one task, 49 duplicates', async () => {
    const { tasks } = ctx.store;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        tasks.enqueue({ type: 't.idem', payload: { i }, idempotencyKey: 'order-42' }),
      ),
    );
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
    const { rows } = await ctx.store.pool.query(
      `select id from baton.tasks where idempotency_key = 'order-42'`,
    );
    expect(rows).toHaveLength(1);
  });

  it('a batch with repeated and known idempotency keys returns the existing tasks in input order', async () => {
    const { tasks } = ctx.store;
    const first = await tasks.enqueue({ type: 't.idem2', idempotencyKey: 'k1' });
    const results = await tasks.enqueueMany([
      { type: 't.idem2', idempotencyKey: 'k2' },
      { type: 't.idem2' },
      { type: 't.idem2', idempotencyKey: 'k1' },
      { type: 't.idem2', idempotencyKey: 'k2' },
      { type: 't.idem2' },
    ]);
    expect(results[0]!.duplicate).toBe(false);
    expect(results[1]!.duplicate).toBe(false);
    expect(results[2]).toEqual({ id: first.id, duplicate: true });
    expect(results[3]).toEqual({ id: results[0]!.id, duplicate: true });
    expect(results[4]!.duplicate).toBe(false);
    expect(new Set([results[0]!.id, results[1]!.id, results[4]!.id, first.id]).size).toBe(4);
    const payloads = await Promise.all(results.map((r) => tasks.get(r.id)));
    expect(payloads.every((t) => t?.type === 't.idem2')).toBe(true);
  });

  it('five concurrent migrators on a fresh schema: one applies the migrations, no error', async () => {
    const pools = Array.from({ length: 5 }, () => ctx.db.pool({ max: 1 }));
    const results = await Promise.all(pools.map((p) => migrate(p, 'fresh_schema')));
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    expect(results.every((r) => r.current === results[0]!.current)).toBe(true);
    const { rows } = await ctx.store.pool.query<{ n: number }>(
      `select count(*)::int as n from fresh_schema.migrations`,
    );
    expect(rows[0]!.n).toBe(results[0]!.current);
  });

  it('enqueue inside the caller transaction commits and rolls back with it', async () => {
    const { tasks } = ctx.store;
    const client = new pg.Client({ connectionString: ctx.db.url });
    await client.connect();
    try {
      await client.query('begin');
      const kept = await tasks.enqueue({ type: 't.tx', payload: 'kept' }, client);
      await client.query('commit');
      await client.query('begin');
      const dropped = await tasks.enqueue({ type: 't.tx', payload: 'dropped' }, client);
      await client.query('rollback');
      expect(await tasks.get(kept.id)).not.toBeNull();
      expect(await tasks.get(dropped.id)).toBeNull();
    } finally {
      await client.end();
    }
  });

  it('caller work inside the completion transaction happens at most once per task', async () => {
    const { tasks } = ctx.store;
    await ctx.store.pool.query('create table effects (task_id bigint, attempt int)');
    const { id } = await tasks.enqueue({ type: 't.effect' });
    const [t] = await tasks.claim({ owner: 'a', types: ['t.effect'], limit: 1, leaseMs: 60_000 });
    await tasks.markRunning([t!]);
    const work = (client: pg.PoolClient) =>
      client.query('insert into effects values ($1, $2)', [id, t!.attempt]).then(() => undefined);
    const outcomes = await Promise.all([
      tasks.complete(t!, { work }),
      tasks.complete(t!, { work }),
      tasks.complete(t!, { work }),
    ]);
    expect(outcomes.filter((o) => o.ok)).toHaveLength(1);
    const { rows } = await ctx.store.pool.query('select * from effects');
    expect(rows).toHaveLength(1);
  });
});
