import type { PoolClient } from 'pg';
import { describe, expect, it } from 'vitest';
import { createStore } from '../src/index.js';
import { fenceLock } from '../src/leadership.sql.js';
import { useStore, sleep } from './helpers.js';

const ctx = useStore();

describe('the warm-backup token', () => {
  it('the first grant is term 1; the holder renews; others cannot take a live token', async () => {
    const { leadership } = ctx.store;
    expect(
      await leadership.acquire({ groupId: 'g-a', nodeId: 'n1', observedTerm: 0, leaseMs: 5000 }),
    ).toEqual({
      ok: true,
      term: 1,
    });
    expect(await leadership.renew({ groupId: 'g-a', nodeId: 'n1', term: 1, leaseMs: 5000 })).toBe(
      true,
    );
    expect(await leadership.renew({ groupId: 'g-a', nodeId: 'n2', term: 1, leaseMs: 5000 })).toBe(
      false,
    );
    const lost = await leadership.acquire({
      groupId: 'g-a',
      nodeId: 'n2',
      observedTerm: 1,
      leaseMs: 5000,
    });
    expect(lost).toMatchObject({ ok: false, current: { holder: 'n1', term: 1 } });
    // A candidate that saw no token at all loses to the existing one as well.
    expect(
      await leadership.acquire({ groupId: 'g-a', nodeId: 'n3', observedTerm: 0, leaseMs: 5000 }),
    ).toMatchObject({
      ok: false,
    });
  });

  it('three candidates racing for an expired token: exactly one wins the next term', async () => {
    const { leadership } = ctx.store;
    await leadership.acquire({ groupId: 'g-race', nodeId: 'dead', observedTerm: 0, leaseMs: 30 });
    await sleep(60);
    for (let round = 0; round < 10; round++) {
      const current = (await leadership.current('g-race'))!;
      const outcomes = await Promise.all(
        ['c1', 'c2', 'c3'].map((nodeId) =>
          leadership.acquire({
            groupId: 'g-race',
            nodeId,
            observedTerm: current.term,
            leaseMs: 20,
            lockTimeoutMs: 5000, // the racers wait for each other's grant: not bounded by this short lease
          }),
        ),
      );
      const winners = outcomes.filter((o) => o.ok);
      expect(winners).toEqual([{ ok: true, term: current.term + 1 }]);
      await sleep(40);
    }
    const grants = await leadership.grants('g-race');
    expect(grants.map((g) => g.term)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
  });

  it('a renewal after the lease ran out fails; a re-grant to the same node is a new term', async () => {
    const { leadership } = ctx.store;
    await leadership.acquire({ groupId: 'g-re', nodeId: 'n1', observedTerm: 0, leaseMs: 20 });
    await sleep(50);
    expect(await leadership.renew({ groupId: 'g-re', nodeId: 'n1', term: 1, leaseMs: 1000 })).toBe(
      false,
    );
    expect(
      await leadership.acquire({ groupId: 'g-re', nodeId: 'n1', observedTerm: 1, leaseMs: 1000 }),
    ).toEqual({
      ok: true,
      term: 2,
    });
  });

  it('a release hands the token over at once, without waiting for the lease', async () => {
    const { leadership } = ctx.store;
    await leadership.acquire({ groupId: 'g-rel', nodeId: 'n1', observedTerm: 0, leaseMs: 60_000 });
    expect(await leadership.release({ groupId: 'g-rel', nodeId: 'n1', term: 1 })).toBe(true);
    expect(await leadership.current('g-rel')).toMatchObject({ holder: null, term: 1 });
    expect(
      await leadership.acquire({
        groupId: 'g-rel',
        nodeId: 'n2',
        observedTerm: 1,
        leaseMs: 60_000,
      }),
    ).toEqual({
      ok: true,
      term: 2,
    });
    // the old holder can neither renew nor release the new term
    expect(await leadership.renew({ groupId: 'g-rel', nodeId: 'n1', term: 1, leaseMs: 1000 })).toBe(
      false,
    );
    expect(await leadership.release({ groupId: 'g-rel', nodeId: 'n1', term: 2 })).toBe(false);
    expect((await leadership.grants('g-rel')).map((g) => [g.term, g.holder])).toEqual([
      [1, 'n1'],
      [2, 'n2'],
    ]);
  });

  it('a leader-only write of a stale term is refused and counted', async () => {
    const { leadership, pool, tasks } = ctx.store;
    await pool.query('create table leader_writes (term bigint)');
    await leadership.acquire({ groupId: 'g-f', nodeId: 'n1', observedTerm: 0, leaseMs: 10 });
    await sleep(30);
    await leadership.acquire({ groupId: 'g-f', nodeId: 'n2', observedTerm: 1, leaseMs: 60_000 });
    const before = tasks.stats.staleTerms;
    const stale = await leadership.fenced({ groupId: 'g-f', term: 1 }, (c) =>
      c.query('insert into leader_writes values (1)'),
    );
    expect(stale).toEqual({ ok: false, reason: 'stale_term', currentTerm: 2 });
    expect(tasks.stats.staleTerms).toBe(before + 1);
    const fresh = await leadership.fenced({ groupId: 'g-f', term: 2 }, (c) =>
      c.query('insert into leader_writes values (2)'),
    );
    expect(fresh.ok).toBe(true);
    expect((await pool.query('select term from leader_writes')).rows).toEqual([{ term: '2' }]);
  });

  it('a grant of the next term waits until an in-flight fenced write of the current term has committed', async () => {
    const { leadership } = ctx.store;
    await leadership.acquire({ groupId: 'g-order', nodeId: 'n1', observedTerm: 0, leaseMs: 50 });
    const order: string[] = [];
    const write = leadership.fenced({ groupId: 'g-order', term: 1 }, async () => {
      await sleep(300); // the lease runs out while the write is in flight
      order.push('term-1 write committing');
    });
    await sleep(100);
    const grant = leadership
      .acquire({ groupId: 'g-order', nodeId: 'n2', observedTerm: 1, leaseMs: 60_000 })
      .then((o) => {
        order.push(`term-2 granted: ${o.ok}`);
        return o;
      });
    expect((await write).ok).toBe(true);
    expect(await grant).toEqual({ ok: true, term: 2 });
    expect(order).toEqual(['term-1 write committing', 'term-2 granted: true']);
  });
});

describe('the fence and the lease', () => {
  it("a bearer's renewals go through while its own fenced transaction runs longer than the lease", async () => {
    const { leadership } = ctx.store;
    const g = { groupId: 'g-long', nodeId: 'n1' };
    await leadership.acquire({ ...g, observedTerm: 0, leaseMs: 300 });
    let renewing = true;
    const renewals: boolean[] = [];
    const renew = (async () => {
      while (renewing) {
        renewals.push(await leadership.renew({ ...g, term: 1, leaseMs: 300 }));
        await sleep(100);
      }
    })();
    // Fenced work three times as long as the lease, busy (never idle long).
    const write = leadership.fenced({ groupId: 'g-long', term: 1 }, async (tx) => {
      for (let i = 0; i < 9; i++) {
        await tx.query('select pg_sleep(0.1)');
      }
      return 'done';
    });
    await sleep(500);
    // A standby's attempt meanwhile: it waits for the fenced work (longer
    // than its lease, by default its lock timeout), then finds the lease live.
    const standby = leadership.acquire({
      groupId: 'g-long',
      nodeId: 'n2',
      observedTerm: 1,
      leaseMs: 300,
      lockTimeoutMs: 5000,
    });
    expect(await write).toEqual({ ok: true, value: 'done' });
    expect((await standby).ok).toBe(false);
    renewing = false;
    await renew;
    expect(renewals.length).toBeGreaterThanOrEqual(5);
    expect(renewals.every(Boolean)).toBe(true);
    expect(await leadership.current('g-long')).toMatchObject({ holder: 'n1', term: 1 });
  });

  it('a grant that waited for fenced work starts a full lease from when it is made', async () => {
    const { leadership } = ctx.store;
    await leadership.acquire({ groupId: 'g-wait', nodeId: 'n1', observedTerm: 0, leaseMs: 100 });
    const write = leadership.fenced({ groupId: 'g-wait', term: 1 }, async (tx) => {
      for (let i = 0; i < 12; i++) await tx.query('select pg_sleep(0.1)');
    });
    await sleep(150); // n1's lease has run out; its fenced work goes on
    const granted = await leadership.acquire({
      groupId: 'g-wait',
      nodeId: 'n2',
      observedTerm: 1,
      leaseMs: 1000,
      lockTimeoutMs: 5000, // waits longer than its lease
    });
    expect((await write).ok).toBe(true);
    expect(granted).toEqual({ ok: true, term: 2 });
    const token = await leadership.current('g-wait');
    expect(token!.remainingMs).toBeGreaterThan(500);
    expect(
      await leadership.renew({ groupId: 'g-wait', nodeId: 'n2', term: 2, leaseMs: 1000 }),
    ).toBe(true);
  });

  it('an acquire waits for fenced work at most its lease, then fails and frees its connection', async () => {
    const { leadership, pool } = ctx.store;
    await leadership.acquire({ groupId: 'g-lt', nodeId: 'n1', observedTerm: 0, leaseMs: 50 });
    await sleep(80);
    // n1's fenced statement runs on for 3 s (its lease has run out).
    const write = leadership.fenced({ groupId: 'g-lt', term: 1 }, (tx) =>
      tx.query('select pg_sleep(3)'),
    );
    await sleep(100);
    const t0 = performance.now();
    const reported: number[] = [];
    await expect(
      leadership.acquire({
        groupId: 'g-lt',
        nodeId: 'n2',
        observedTerm: 1,
        leaseMs: 300,
        onCompareAndSet: () => reported.push(performance.now()),
      }),
    ).rejects.toMatchObject({ code: '55P03' }); // lock_not_available
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(300);
    expect(waited).toBeLessThan(1000);
    expect(reported).toEqual([]); // never got as far as the compare-and-set
    // Its session is no longer waiting for the lock: only the fenced statement holds one.
    const { rows } = await pool.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`,
    );
    expect(rows[0]!.n).toBe(0);
    // Once the fenced work has ended, the retried acquire gets the term.
    expect((await write).ok).toBe(true);
    expect(
      await leadership.acquire({ groupId: 'g-lt', nodeId: 'n2', observedTerm: 1, leaseMs: 300 }),
    ).toEqual({ ok: true, term: 2 });
  });

  it('an acquire reports its compare-and-set once, after the wait for the fence lock', async () => {
    const { leadership } = ctx.store;
    await leadership.acquire({ groupId: 'g-cas', nodeId: 'n1', observedTerm: 0, leaseMs: 50 });
    await sleep(80);
    // n1's fenced work holds the lock (its lease ran out meanwhile) until `finish`.
    let finish: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const write = leadership.fenced({ groupId: 'g-cas', term: 1 }, () => finished);
    await sleep(50);
    const reported: number[] = [];
    const grant = leadership.acquire({
      groupId: 'g-cas',
      nodeId: 'n2',
      observedTerm: 1,
      leaseMs: 60_000,
      onCompareAndSet: () => reported.push(performance.now()),
    });
    await sleep(200);
    expect(reported).toEqual([]);
    const freedAt = performance.now();
    finish();
    expect((await write).ok).toBe(true);
    expect(await grant).toEqual({ ok: true, term: 2 });
    // The grant's lease started after that: no earlier than the report.
    expect(reported).toHaveLength(1);
    expect(reported[0]).toBeGreaterThanOrEqual(freedAt);
  });

  it('a candidate paused in mid-grant is cut off by PostgreSQL after 2 s: the others go on, its process does not crash', async () => {
    // A pool whose clients stall (as a paused process would) before the
    // statement that follows the lock: the grant's session sits idle holding it.
    const stalling = ctx.db.pool({ max: 2 });
    const connect = stalling.connect.bind(stalling) as () => Promise<PoolClient>;
    (stalling as unknown as { connect: () => Promise<PoolClient> }).connect = async () => {
      const client = await connect();
      const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
      let calls = 0;
      (client as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = async (
        ...args: unknown[]
      ) => {
        if (++calls === 2) await sleep(3000);
        return query(...args);
      };
      return client;
    };
    const paused = createStore({ pool: stalling });
    const { leadership } = ctx.store;
    await leadership.acquire({ groupId: 'g-pause', nodeId: 'n1', observedTerm: 0, leaseMs: 50 });
    await sleep(80);
    const stalled = paused.leadership.acquire({
      groupId: 'g-pause',
      nodeId: 'n2',
      observedTerm: 1,
      leaseMs: 60_000,
    });
    stalled.catch(() => undefined);
    await sleep(100);
    const t0 = Date.now();
    // Another candidate gets the term once PostgreSQL has ended the stalled session.
    expect(
      await leadership.acquire({
        groupId: 'g-pause',
        nodeId: 'n3',
        observedTerm: 1,
        leaseMs: 60_000,
      }),
    ).toEqual({ ok: true, term: 2 });
    expect(Date.now() - t0).toBeLessThan(2900);
    await expect(stalled).rejects.toThrow();
    await paused.close();
  });

  it('a fenced transaction that waited for a grant sees it, even where the default isolation is repeatable read', async () => {
    const rr = createStore({
      pool: ctx.db.pool({ max: 4, options: '-c default_transaction_isolation=repeatable\\ read' }),
    });
    try {
      const check = await rr.pool.query<{ transaction_isolation: string }>(
        'show transaction_isolation',
      );
      expect(check.rows[0]!.transaction_isolation).toBe('repeatable read');
      const { leadership } = rr;
      await leadership.acquire({ groupId: 'g-rr', nodeId: 'n1', observedTerm: 0, leaseMs: 50 });
      await sleep(80);
      // A grant of term 2 holds the fence lock while a term-1 write starts.
      const granting = await rr.pool.connect();
      try {
        await granting.query('begin isolation level read committed');
        await granting.query(fenceLock('"baton"', 'g-rr').exclusive);
        const write = rr.leadership.fenced({ groupId: 'g-rr', term: 1 }, () =>
          Promise.resolve('written'),
        );
        await sleep(200);
        await granting.query(
          `update baton.token_holder set task_id = 'n2', term = 2, lease_expires_at = now() + interval '1 minute'
            where group_id = 'g-rr'`,
        );
        await granting.query('commit');
        expect(await write).toEqual({ ok: false, reason: 'stale_term', currentTerm: 2 });
      } finally {
        granting.release();
      }
    } finally {
      await rr.close();
    }
  });
});

describe('heartbeats', () => {
  it('records heartbeats on PostgreSQL time and lists members with their age', async () => {
    const { nodes } = ctx.store;
    await nodes.beat('n1', 'g-hb', { version: '1' });
    await nodes.beat('n2', 'g-hb');
    await sleep(120);
    await nodes.beat('n2', 'g-hb');
    const members = await nodes.members('g-hb');
    expect(members.map((m) => m.nodeId)).toEqual(['n1', 'n2']);
    expect(members[0]!.heartbeatAgeMs).toBeGreaterThanOrEqual(100);
    expect(members[1]!.heartbeatAgeMs).toBeLessThan(members[0]!.heartbeatAgeMs);
    expect(members[0]!.info).toEqual({ version: '1' });
    expect(await nodes.prune('g-hb', 100)).toBe(1);
    await nodes.leave('n2', 'g-hb');
    expect(await nodes.members('g-hb')).toEqual([]);
  });
});

describe('a fenced transaction left idle', () => {
  it('is ended by PostgreSQL after idleTimeoutMs, so a paused bearer cannot block the next grant', async () => {
    const { leadership } = ctx.store;
    await leadership.acquire({ groupId: 'g-idle', nodeId: 'n1', observedTerm: 0, leaseMs: 50 });
    // The "paused" bearer: it holds the share lock and goes idle inside the transaction.
    const write = leadership.fenced(
      { groupId: 'g-idle', term: 1 },
      async (tx) => {
        await sleep(1500);
        await tx.query('select 1');
      },
      { idleTimeoutMs: 200 },
    );
    await sleep(100);
    const t0 = Date.now();
    const grant = await leadership.acquire({
      groupId: 'g-idle',
      nodeId: 'n2',
      observedTerm: 1,
      leaseMs: 60_000,
    });
    expect(grant).toEqual({ ok: true, term: 2 });
    expect(Date.now() - t0).toBeLessThan(1200); // not held until the paused writer wakes up
    await expect(write).rejects.toThrow();
  });
});
