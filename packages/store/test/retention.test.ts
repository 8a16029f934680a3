import { describe, expect, it } from 'vitest';
import type { TaskStatus } from '../src/index.js';
import { useStore } from './helpers.js';

const ctx = useStore();

const HOUR = 3_600_000;

/**
 * Enqueues `n` tasks, then dates them: created `createdAgoMs` ago and, for a
 * terminal status, finished `finishedAgoMs` ago (with a history row each).
 */
async function tasksAt(
  n: number,
  status: TaskStatus,
  createdAgoMs: number,
  finishedAgoMs: number | null,
): Promise<string[]> {
  const { tasks, pool } = ctx.store;
  const results = await tasks.enqueueMany(
    Array.from({ length: n }, (_, i) => ({ type: 't.retention', payload: { i } })),
  );
  const ids = results.map((r) => r.id);
  await pool.query(
    `update baton.tasks
        set status = $2::baton.task_status, attempt = 1,
            created_at = now() - $3 * interval '1 millisecond',
            finished_at = case when $4::bigint is null then null
                               else now() - $4 * interval '1 millisecond' end
      where id = any($1::bigint[])`,
    [ids, status, createdAgoMs, finishedAgoMs],
  );
  await pool.query(
    `insert into baton.task_history (task_id, from_status, to_status, attempt)
     select id, 'running', $2::baton.task_status, 1 from unnest($1::bigint[]) as id`,
    [ids, status],
  );
  return ids;
}

async function existing(ids: readonly string[]): Promise<string[]> {
  const { rows } = await ctx.store.pool.query<{ id: string }>(
    'select id::text from baton.tasks where id = any($1::bigint[]) order by id',
    [ids],
  );
  return rows.map((r) => r.id);
}

describe('retention (tasks.prune)', () => {
  it('deletes the tasks of one terminal status finished before the cutoff, with their history and ticks, and nothing else', async () => {
    const { tasks, leadership, pool } = ctx.store;
    await leadership.acquire({ groupId: 'g-ret', nodeId: 'n1', observedTerm: 0, leaseMs: 60_000 });
    const fence = { groupId: 'g-ret', term: 1 };
    const oldDone = await tasksAt(25, 'completed', 3 * HOUR, 2 * HOUR);
    const oldDead = await tasksAt(3, 'dead_letter', 3 * HOUR, 2 * HOUR);
    const oldPending = await tasksAt(2, 'pending', 3 * HOUR, null);
    const recentDone = await tasksAt(4, 'completed', 40 * 60_000, 30 * 60_000);
    // Created before the cutoff, finished after it: kept.
    const lateDone = await tasksAt(2, 'completed', 3 * HOUR, 10 * 60_000);
    await pool.query(
      `insert into baton.schedule_ticks (schedule_id, due_at, task_id)
       select 'ret-s', now() - (id || ' minutes')::interval, id from unnest($1::bigint[]) as id`,
      [oldDone.slice(0, 3)],
    );

    // Batches of 10: three statements delete the 25, in id order.
    expect(await tasks.prune({ status: 'completed', olderThanMs: HOUR, fence, batch: 10 })).toEqual(
      { ok: true, deleted: 25 },
    );
    expect(await existing(oldDone)).toEqual([]);
    const left = [...oldDead, ...oldPending, ...recentDone, ...lateDone];
    expect(await existing(left)).toEqual([...left].sort((a, b) => Number(a) - Number(b)));
    const history = await pool.query<{ n: number }>(
      'select count(*)::int as n from baton.task_history where task_id = any($1::bigint[])',
      [oldDone],
    );
    expect(history.rows[0]!.n).toBe(0);
    const ticks = await pool.query<{ n: number }>(
      "select count(*)::int as n from baton.schedule_ticks where schedule_id = 'ret-s'",
    );
    expect(ticks.rows[0]!.n).toBe(0);
    // The other statuses have their own retention.
    expect(await tasks.prune({ status: 'dead_letter', olderThanMs: HOUR, fence })).toEqual({
      ok: true,
      deleted: 3,
    });
    expect(await existing(oldDead)).toEqual([]);
    expect(await existing(oldPending)).toHaveLength(2);
    // Nothing old enough left: nothing deleted.
    expect(await tasks.prune({ status: 'completed', olderThanMs: HOUR, fence })).toEqual({
      ok: true,
      deleted: 0,
    });
  });

  it('stops after maxBatches; the next call goes on', async () => {
    const { tasks, leadership } = ctx.store;
    await leadership.acquire({ groupId: 'g-ret2', nodeId: 'n1', observedTerm: 0, leaseMs: 60_000 });
    const fence = { groupId: 'g-ret2', term: 1 };
    const ids = await tasksAt(7, 'cancelled', 3 * HOUR, 2 * HOUR);
    expect(
      await tasks.prune({ status: 'cancelled', olderThanMs: HOUR, fence, batch: 2, maxBatches: 2 }),
    ).toEqual({ ok: true, deleted: 4 });
    expect(await existing(ids)).toHaveLength(3);
    expect(
      await tasks.prune({ status: 'cancelled', olderThanMs: HOUR, fence, batch: 2, maxBatches: 2 }),
    ).toEqual({ ok: true, deleted: 3 });
    expect(await existing(ids)).toEqual([]);
  });

  it('deletes nothing for a stale term, and counts it', async () => {
    const { tasks, leadership } = ctx.store;
    await leadership.acquire({ groupId: 'g-ret3', nodeId: 'n1', observedTerm: 0, leaseMs: 1 });
    await new Promise((r) => setTimeout(r, 20));
    await leadership.acquire({ groupId: 'g-ret3', nodeId: 'n2', observedTerm: 1, leaseMs: 60_000 });
    const ids = await tasksAt(3, 'completed', 3 * HOUR, 2 * HOUR);
    const before = tasks.stats.staleTerms;
    expect(
      await tasks.prune({
        status: 'completed',
        olderThanMs: HOUR,
        fence: { groupId: 'g-ret3', term: 1 },
      }),
    ).toEqual({ ok: false, reason: 'stale_term' });
    expect(tasks.stats.staleTerms).toBe(before + 1);
    expect(await existing(ids)).toHaveLength(3);
  });

  it('refuses a status that is not terminal', async () => {
    await expect(
      ctx.store.tasks.prune({
        status: 'pending' as 'completed',
        olderThanMs: HOUR,
        fence: { groupId: 'g-ret', term: 1 },
      }),
    ).rejects.toThrow(/status: must be completed, cancelled or dead_letter/);
  });
});
