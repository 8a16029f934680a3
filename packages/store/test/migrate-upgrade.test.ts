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
    expect(await migrate(pool, schema)).toMatchObject({ applied: [5] });

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

describe('upgrading a version-5 schema whose services have run', () => {
  it('migration 6 counts the runs logged so far, so maxCount still holds, and retention may prune the log', async () => {
    const pool = ctx.db.pool({ max: 2 });
    const schema = 'upgrade_v5';
    await migrate(pool, schema);
    await pool.query(`drop table ${schema}.service_run_counts`);
    await pool.query(`drop index ${schema}.service_runs_started_idx`);
    await pool.query(`delete from ${schema}.migrations where id = 6`);
    // Three runs logged by version 5, two days ago, and one of another group.
    await pool.query(
      `insert into ${schema}.service_runs (group_id, service, term, node, started_at)
       select 'g6', 'sweep', 1, 'n1', now() - interval '2 days' from generate_series(1, 3)
       union all select 'g7', 'sweep', 1, 'n9', now() - interval '2 days'`,
    );
    expect(await migrate(pool, schema)).toMatchObject({ applied: [6] });

    const store = createStore({ pool, schema });
    await store.leadership.acquire({
      groupId: 'g6',
      nodeId: 'n1',
      observedTerm: 0,
      leaseMs: 60_000,
    });
    const run = { groupId: 'g6', service: 'sweep', term: 1, node: 'n1', maxCount: 5 };
    const fence = { groupId: 'g6', term: 1 };
    expect(await store.serviceRuns.prune({ olderThanMs: 86_400_000, fence })).toEqual({
      ok: true,
      deleted: 3,
    });
    expect(await store.serviceRuns.record(run)).toMatchObject({ ok: true });
    expect(await store.serviceRuns.record(run)).toMatchObject({ ok: true });
    expect(await store.serviceRuns.record(run)).toEqual({ ok: false, reason: 'max_count' });
    expect(await store.serviceRuns.list('g6', 'sweep')).toHaveLength(2);
    // Another group's log is that group's to prune.
    expect(await store.serviceRuns.list('g7', 'sweep')).toHaveLength(1);
    // A recent run is not old enough to go.
    expect(await store.serviceRuns.prune({ olderThanMs: 86_400_000, fence })).toEqual({
      ok: true,
      deleted: 0,
    });
    expect(
      await store.serviceRuns.prune({ olderThanMs: 1, fence: { groupId: 'g6', term: 9 } }),
    ).toEqual({ ok: false, reason: 'stale_term' });
  });
});
