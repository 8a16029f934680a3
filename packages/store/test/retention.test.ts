import type { PoolClient } from 'pg';
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

/** The bearer's fenced transactions for `groupId` and `term`. */
const fencedBy =
  (groupId: string, term: number) =>
  <T>(work: (c: PoolClient) => Promise<T>) =>
    ctx.store.leadership.fenced({ groupId, term }, work);

describe('retention (tasks.prune)', () => {
  it('deletes the tasks of one terminal status finished before the cutoff, with their history and ticks, and nothing else', async () => {
    const { tasks, leadership, pool } = ctx.store;
    await leadership.acquire({ groupId: 'g-ret', nodeId: 'n1', observedTerm: 0, leaseMs: 60_000 });
    const fenced = fencedBy('g-ret', 1);
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

    // Windows of 10 ids: the walk goes on across them to the end.
    expect(
      await tasks.prune({ status: 'completed', olderThanMs: HOUR, fenced, windowIds: 10 }),
    ).toEqual({ ok: true, deleted: 25, after: null });
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
    expect(await tasks.prune({ status: 'dead_letter', olderThanMs: HOUR, fenced })).toEqual({
      ok: true,
      deleted: 3,
      after: null,
    });
    expect(await existing(oldDead)).toEqual([]);
    expect(await existing(oldPending)).toHaveLength(2);
    // Nothing old enough left: nothing deleted.
    expect(await tasks.prune({ status: 'completed', olderThanMs: HOUR, fenced })).toMatchObject({
      ok: true,
      deleted: 0,
    });
  });

  it('stops after maxWindows and says where the next call goes on', async () => {
    const { tasks, leadership } = ctx.store;
    await leadership.acquire({ groupId: 'g-ret2', nodeId: 'n1', observedTerm: 0, leaseMs: 60_000 });
    const fenced = fencedBy('g-ret2', 1);
    const ids = await tasksAt(7, 'cancelled', 3 * HOUR, 2 * HOUR);
    const first = Number(ids[0]);
    // The walk starts just before the first of them: two windows of two ids.
    const one = await tasks.prune({
      status: 'cancelled',
      olderThanMs: HOUR,
      fenced,
      after: String(first - 1),
      windowIds: 2,
      maxWindows: 2,
    });
    expect(one).toEqual({ ok: true, deleted: 4, after: String(first + 3) });
    expect(await existing(ids)).toHaveLength(3);
    const two = await tasks.prune({
      status: 'cancelled',
      olderThanMs: HOUR,
      fenced,
      after: one.ok ? one.after : null,
      windowIds: 2,
      maxWindows: 10,
    });
    expect(two).toEqual({ ok: true, deleted: 3, after: null });
    expect(await existing(ids)).toEqual([]);
  });

  it('jumps over gaps in the ids: a window starts at the next task there is', async () => {
    const { tasks, leadership, pool } = ctx.store;
    await leadership.acquire({ groupId: 'g-gap', nodeId: 'n1', observedTerm: 0, leaseMs: 60_000 });
    const [near] = await tasksAt(1, 'dead_letter', 3 * HOUR, 2 * HOUR);
    const far = String(Number(near) + 5_000_000);
    await pool.query(
      `insert into baton.tasks (id, type, status, attempt, created_at, finished_at)
       overriding system value
       values ($1, 't.retention', 'dead_letter', 1, now() - interval '3 hours', now() - interval '2 hours')`,
      [far],
    );
    // Two windows of ten ids reach both, five million ids apart.
    expect(
      await tasks.prune({
        status: 'dead_letter',
        olderThanMs: HOUR,
        fenced: fencedBy('g-gap', 1),
        after: String(Number(near) - 1),
        windowIds: 10,
        maxWindows: 2,
      }),
    ).toMatchObject({ ok: true, deleted: 2 });
    expect(await existing([near!, far])).toEqual([]);
  });

  it('deletes nothing for a stale term, and counts it', async () => {
    const { tasks, leadership } = ctx.store;
    await leadership.acquire({ groupId: 'g-ret3', nodeId: 'n1', observedTerm: 0, leaseMs: 1 });
    await new Promise((r) => setTimeout(r, 20));
    await leadership.acquire({ groupId: 'g-ret3', nodeId: 'n2', observedTerm: 1, leaseMs: 60_000 });
    const ids = await tasksAt(3, 'completed', 3 * HOUR, 2 * HOUR);
    const before = tasks.stats.staleTerms;
    expect(
      await tasks.prune({ status: 'completed', olderThanMs: HOUR, fenced: fencedBy('g-ret3', 1) }),
    ).toEqual({ ok: false, reason: 'stale_term' });
    expect(tasks.stats.staleTerms).toBe(before + 1);
    expect(await existing(ids)).toHaveLength(3);
  });

  it('refuses a status that is not terminal', async () => {
    await expect(
      ctx.store.tasks.prune({
        status: 'pending' as 'completed',
        olderThanMs: HOUR,
        fenced: fencedBy('g-ret', 1),
      }),
    ).rejects.toThrow(/status: must be completed, cancelled or dead_letter/);
  });
});
