import { describe, expect, it } from 'vitest';
import { useStore, sleep } from './helpers.js';

const ctx = useStore();

describe('leases', () => {
  it('an expired lease is rescued; the old attempt is then refused and counted; the new attempt completes', async () => {
    const { tasks } = ctx.store;
    const { id } = await tasks.enqueue({ type: 't.lease', maxAttempts: 3 });
    const [old] = await tasks.claim({
      owner: 'dead-node',
      types: ['t.lease'],
      limit: 1,
      leaseMs: 50,
    });
    await tasks.markRunning([old!]);
    expect(await tasks.rescueExpired({ node: 'rescuer' })).toEqual([]);
    await sleep(120);
    expect(await tasks.rescueExpired({ node: 'rescuer' })).toEqual([
      { id, status: 'retry', type: 't.lease', attempt: 1 },
    ]);

    const [fresh] = await tasks.claim({
      owner: 'live-node',
      types: ['t.lease'],
      limit: 1,
      leaseMs: 60_000,
    });
    expect(fresh).toMatchObject({ id, attempt: 2, leaseOwner: 'live-node' });
    await tasks.markRunning([fresh!]);

    const staleBefore = tasks.stats.staleAttempts;
    expect(await tasks.complete({ id, attempt: 1 })).toEqual({ ok: false, reason: 'stale' });
    expect(await tasks.extendLease({ id, attempt: 1 }, 60_000)).toEqual({
      ok: false,
      reason: 'stale',
    });
    expect(tasks.stats.staleAttempts).toBe(staleBefore + 2);

    expect(await tasks.complete({ id, attempt: 2 })).toEqual({ ok: true });
    const history = await tasks.history(id);
    const rescued = history.find((h) => h.to === 'retry');
    expect(rescued).toMatchObject({
      from: 'running',
      node: 'rescuer',
      attempt: 1,
      detail: { reason: 'lease_expired', owner: 'dead-node' },
    });
    // The rescued attempt's start, kept with it.
    expect(Date.parse((rescued!.detail as { startedAt: string }).startedAt)).toBeGreaterThan(0);
    expect(history.at(-1)).toMatchObject({ to: 'completed', attempt: 2, node: 'live-node' });
  });

  it('a rescued task whose attempts are spent is dead-lettered, not retried', async () => {
    const { tasks } = ctx.store;
    const { id } = await tasks.enqueue({ type: 't.lease.last', maxAttempts: 1 });
    await tasks.claim({ owner: 'dead-node', types: ['t.lease.last'], limit: 1, leaseMs: 20 });
    await sleep(60);
    const rescued = await tasks.rescueExpired({ node: 'rescuer' });
    expect(rescued).toContainEqual(expect.objectContaining({ id, status: 'dead_letter' }));
    expect((await tasks.get(id))!.attempt).toBe(1);
  });

  it('extending a lease keeps the task from being rescued', async () => {
    const { tasks } = ctx.store;
    const { id } = await tasks.enqueue({ type: 't.lease.long' });
    const [t] = await tasks.claim({
      owner: 'slow',
      types: ['t.lease.long'],
      limit: 1,
      leaseMs: 80,
    });
    await tasks.markRunning([t!]);
    for (let i = 0; i < 4; i++) {
      await sleep(40);
      expect(await tasks.extendLease(t!, 80)).toMatchObject({ ok: true, cancelRequested: false });
    }
    expect(await tasks.rescueExpired({ node: 'rescuer' })).not.toContainEqual(
      expect.objectContaining({ id }),
    );
    expect(await tasks.complete(t!)).toEqual({ ok: true });
  });

  it('a rescue fenced by a term that is not current changes nothing', async () => {
    const { tasks, pool } = ctx.store;
    const { id } = await tasks.enqueue({ type: 't.lease.fenced' });
    await tasks.claim({ owner: 'dead', types: ['t.lease.fenced'], limit: 1, leaseMs: 10 });
    await pool.query(
      `insert into baton.token_holder (group_id, task_id, term) values ('g1', 'n1', 7)`,
    );
    await sleep(40);
    expect(await tasks.rescueExpired({ node: 'n0', fence: { groupId: 'g1', term: 6 } })).toEqual(
      [],
    );
    expect((await tasks.get(id))!.status).toBe('claimed');
    const rescued = await tasks.rescueExpired({ node: 'n1', fence: { groupId: 'g1', term: 7 } });
    expect(rescued).toContainEqual(expect.objectContaining({ id, status: 'retry' }));
  });
});

describe('a requested cancellation is never forgotten', () => {
  async function runningCancelRequested(type: string, leaseMs = 60_000) {
    const { tasks } = ctx.store;
    const { id } = await tasks.enqueue({ type, maxAttempts: 5 });
    const [run] = await tasks.claim({ owner: 'n1', types: [type], limit: 1, leaseMs, start: true });
    expect(await tasks.cancel(id, 'cli')).toEqual({ ok: true, status: 'cancel_requested' });
    return run!;
  }

  it('by the rescue of its expired lease: it ends cancelled, not retried', async () => {
    const { tasks } = ctx.store;
    const run = await runningCancelRequested('t.cancel.rescue', 50);
    await sleep(120);
    expect(await tasks.rescueExpired({ node: 'rescuer' })).toContainEqual({
      id: run.id,
      status: 'cancelled',
      type: 't.cancel.rescue',
      attempt: 1,
    });
    expect(
      await tasks.claim({ owner: 'n2', types: ['t.cancel.rescue'], limit: 1, leaseMs: 1000 }),
    ).toEqual([]);
    const task = (await tasks.get(run.id))!;
    expect(task).toMatchObject({ status: 'cancelled', attempt: 1 });
    expect(task.finishedAt).toBeInstanceOf(Date);
  });

  it('by a retryable failure: it ends cancelled', async () => {
    const { tasks } = ctx.store;
    const run = await runningCancelRequested('t.cancel.fail');
    const outcome = await tasks.fail({ ...run, error: { message: 'aborted' }, retryable: true });
    expect(outcome).toMatchObject({ ok: true, status: 'cancelled' });
    expect((await tasks.get(run.id))!.status).toBe('cancelled');
    const history = await tasks.history(run.id);
    expect(history.at(-1)).toMatchObject({ from: 'running', to: 'cancelled', attempt: 1 });
  });

  it('by a release at shutdown: it ends cancelled, not pending', async () => {
    const { tasks } = ctx.store;
    const run = await runningCancelRequested('t.cancel.release');
    expect(await tasks.release([run], 'n1')).toBe(1);
    expect((await tasks.get(run.id))!).toMatchObject({ status: 'cancelled', attempt: 1 });
    expect(
      await tasks.claim({ owner: 'n2', types: ['t.cancel.release'], limit: 1, leaseMs: 1000 }),
    ).toEqual([]);
  });
});
