import { describe, expect, it } from 'vitest';
import { createStore, migrate } from '../src/index.js';
import { useStore } from './helpers.js';

const ctx = useStore();

describe('upgrading a version-4 schema that holds tasks', () => {
  it('migration 5 rebuilds tasks_status_idx without completed tasks, and every task is still found by status', async () => {
    const pool = ctx.db.pool({ max: 2 });
    const schema = 'upgrade_v4';
    await migrate(pool, schema);
    // Back to version 4 as it shipped: the status index over every row.
    await pool.query(`drop index ${schema}.tasks_status_idx`);
    await pool.query(`create index tasks_status_idx on ${schema}.tasks (status, id)`);
    await pool.query(`delete from ${schema}.migrations where id = 5`);

    const store = createStore({ pool, schema });
    const { tasks } = store;
    const ids = (await tasks.enqueueMany(Array.from({ length: 6 }, () => ({ type: 'up' })))).map(
      (r) => r.id,
    );
    const claimed = await tasks.claim({ owner: 'n', limit: 4, leaseMs: 60_000, start: true });
    expect(claimed).toHaveLength(4);
    await tasks.completeMany(claimed.slice(0, 2));
    await tasks.fail({ ...claimed[2]!, error: { message: 'no' }, retryable: false });
    await tasks.cancel(ids[5]!);

    const before = await tasks.counts();
    expect(await migrate(pool, schema)).toEqual({ applied: [5], current: 5 });

    const { rows } = await pool.query<{ def: string }>(
      `select pg_get_indexdef(indexrelid) as def from pg_index
        where indexrelid = '${schema}.tasks_status_idx'::regclass`,
    );
    expect(rows[0]!.def).toMatch(/WHERE \(status <> 'completed'::/);
    expect(await tasks.counts()).toEqual(before);
    for (const [status, n] of [
      ['completed', 2],
      ['running', 1],
      ['dead_letter', 1],
      ['pending', 1],
      ['cancelled', 1],
    ] as const) {
      expect((await tasks.list({ status: [status] })).tasks.length, status).toBe(n);
    }
    expect((await tasks.list({ status: ['running', 'dead_letter', 'pending'] })).tasks.length).toBe(
      3,
    );
  });
});
