import { describe, expect, it } from 'vitest';
import { createStore } from '../src/index.js';
import { sleep, useStore } from './helpers.js';

const ctx = useStore();

describe('the run log of coordinated services', () => {
  it('lists runs oldest first, by number (run 10 after run 9)', async () => {
    const { leadership, serviceRuns } = ctx.store;
    await leadership.acquire({ groupId: 'g-list', nodeId: 'n1', observedTerm: 0, leaseMs: 60_000 });
    for (let i = 0; i < 12; i++) {
      await serviceRuns.record({ groupId: 'g-list', service: 'tick', term: 1, node: 'n1' });
    }
    const ids = (await serviceRuns.list('g-list', 'tick')).map((r) => Number(r.id));
    expect(ids).toHaveLength(12);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });

  it('records a run of the current term; refuses (and counts) a stale term; stops at maxCount across terms', async () => {
    const { leadership, serviceRuns, tasks } = ctx.store;
    await leadership.acquire({ groupId: 'g', nodeId: 'n1', observedTerm: 0, leaseMs: 20 });
    const first = await serviceRuns.record({
      groupId: 'g',
      service: 's',
      term: 1,
      node: 'n1',
      maxCount: 3,
    });
    expect(first).toMatchObject({ ok: true });
    await sleep(40);
    await leadership.acquire({ groupId: 'g', nodeId: 'n2', observedTerm: 1, leaseMs: 60_000 });
    const staleBefore = tasks.stats.staleTerms;
    expect(
      await serviceRuns.record({ groupId: 'g', service: 's', term: 1, node: 'n1', maxCount: 3 }),
    ).toEqual({
      ok: false,
      reason: 'stale_term',
    });
    expect(tasks.stats.staleTerms).toBe(staleBefore + 1);
    const second = await serviceRuns.record({
      groupId: 'g',
      service: 's',
      term: 2,
      node: 'n2',
      maxCount: 3,
    });
    const third = await serviceRuns.record({
      groupId: 'g',
      service: 's',
      term: 2,
      node: 'n2',
      maxCount: 3,
    });
    expect(
      second.ok && third.ok && first.ok && second.run > first.run && third.run > second.run,
    ).toBe(true);
    expect(
      await serviceRuns.record({ groupId: 'g', service: 's', term: 2, node: 'n2', maxCount: 3 }),
    ).toEqual({
      ok: false,
      reason: 'max_count',
    });
    // Unlimited services are not counted.
    expect(
      (await serviceRuns.record({ groupId: 'g', service: 'free', term: 2, node: 'n2' })).ok,
    ).toBe(true);
    const runs = await serviceRuns.list('g', 's');
    expect(runs.map((r) => [r.term, r.node])).toEqual([
      [1, 'n1'],
      [2, 'n2'],
      [2, 'n2'],
    ]);
  });
});

describe('stores of two schemas on one pool', () => {
  it('prepare their statements under names of their own (a name is per connection)', async () => {
    // One connection, so both stores' statements meet on it.
    const pool = ctx.db.pool({ max: 1 });
    const stores = ['two_a', 'two_b'].map((schema) => createStore({ pool, schema }));
    try {
      for (const store of stores) {
        await store.migrate();
        await store.nodes.beat('n1', 'g');
        await store.leadership.acquire({
          groupId: 'g',
          nodeId: 'n1',
          observedTerm: 0,
          leaseMs: 60_000,
        });
        expect(
          await store.serviceRuns.record({ groupId: 'g', service: 's', term: 1, node: 'n1' }),
        ).toMatchObject({ ok: true });
      }
      for (const store of stores) {
        expect((await store.nodes.members('g')).map((m) => m.nodeId)).toEqual(['n1']);
      }
    } finally {
      for (const schema of ['two_a', 'two_b']) await pool.query(`drop schema ${schema} cascade`);
    }
  });
});
