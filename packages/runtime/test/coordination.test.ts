import { createStore } from '@baton/store';
import { useTestDatabase } from '@baton/testkit';
import { afterEach, expect, it } from 'vitest';
import { coordinatedService } from '../src/coordination.js';
import type { BatonNode } from '../src/index.js';
import { createMetrics } from '../src/observability/index.js';
import { testNode } from './nodes.js';

const db = useTestDatabase();

let node: BatonNode | undefined;
afterEach(async () => {
  await node?.shutdown(1000);
  node = undefined;
});

it("a service's fenced write whose connection dies rejects to the service alone: no unhandled rejection, the node keeps running", async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const caught: Error[] = [];
    let runs = 0;
    node = testNode(db.url, { nodeId: 'c1' });
    node.service('dies', {
      trigger: { interval: 0.05 },
      execute: async (ctx) => {
        runs++;
        // The session ends under the fenced transaction, as when PostgreSQL
        // ends a paused process's idle transaction.
        await ctx
          .fenced(async (tx) => {
            await tx.query('select pg_terminate_backend(pg_backend_pid())');
          })
          .catch((error: Error) => caught.push(error));
      },
    });
    await node.start();
    await expect.poll(() => caught.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    // Let any stray rejection of those writes surface before looking.
    await new Promise((r) => setTimeout(r, 100));
    expect(unhandled).toEqual([]);
    expect(caught[0]!.message).toMatch(/terminat|connection/i);
    expect(node.role.role).toBe('bearer');
    expect(runs).toBeGreaterThanOrEqual(3);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

it("long fenced work of several services never holds the connections the bearer's renewals need", async () => {
  const groupId = `pool${Math.random().toString(36).slice(2, 6)}`;
  node = testNode(db.url, { nodeId: 'p1', groupId });
  // Three services at once, each in a leader-only transaction of 0.7 s: as many
  // as the control pool has connections.
  for (const name of ['a', 'b', 'c']) {
    node.service(name, {
      trigger: { interval: 0.05 },
      maxConsecutiveFailures: 0,
      execute: async (ctx) => {
        await ctx.fenced((tx) => tx.query('select pg_sleep(0.7)'));
      },
    });
  }
  await node.start();
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const { rows } = await db
    .pool({ max: 1 })
    .query('select term from baton.token_grants where group_id = $1', [groupId]);
  // A lone healthy node keeps its one term (before: a grant every ~0.6 s).
  expect(rows).toHaveLength(1);
}, 20_000);

it('a service run whose node steps down while the run is recorded is not counted: maxCount 1 still runs once', async () => {
  const store = createStore({ pool: db.pool({ max: 4 }) });
  const groupId = `max${Math.random().toString(36).slice(2, 6)}`;
  const executed: string[] = [];
  const logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const service = (nodeId: string) =>
    coordinatedService(
      'once',
      {
        trigger: { interval: 1, maxCount: 1 },
        execute: async () => void executed.push(nodeId),
      },
      { store, groupId, nodeId, metrics: createMetrics() },
    );
  expect(
    await store.leadership.acquire({ groupId, nodeId: 'n1', observedTerm: 0, leaseMs: 5000 }),
  ).toEqual({ ok: true, term: 1 });
  // n1 steps down while its run's record is in flight.
  const stepDown = new AbortController();
  const first = service('n1').execute({ term: 1, signal: stepDown.signal, run: 1, logger });
  stepDown.abort(new Error('stepped_down'));
  await expect(first).rejects.toThrow('stepped_down');
  await store.leadership.release({ groupId, nodeId: 'n1', term: 1 });
  // n2 takes over: the one run the service may have is still to come.
  expect(
    await store.leadership.acquire({ groupId, nodeId: 'n2', observedTerm: 1, leaseMs: 5000 }),
  ).toEqual({ ok: true, term: 2 });
  await service('n2').execute({ term: 2, signal: new AbortController().signal, run: 1, logger });
  expect(executed).toEqual(['n2']);
});

it("a graceful handover does not wait for the old bearer's fenced statement: it is cancelled and rolled back", async () => {
  const groupId = `ho${Math.random().toString(36).slice(2, 6)}`;
  let started = false;
  const committed: string[] = [];
  const make = (nodeId: string) =>
    testNode(db.url, { nodeId, groupId }).service('batch', {
      trigger: { interval: 0.05 },
      maxConsecutiveFailures: 0,
      hangTimeoutMs: 60_000,
      execute: async (ctx) => {
        if (started) return;
        started = true;
        await ctx.fenced(async (tx) => {
          await tx.query('select pg_sleep(4)');
          committed.push(nodeId);
        });
      },
    });
  const a = make('A');
  node = a;
  await a.start();
  await expect.poll(() => a.role.role, { timeout: 5000 }).toBe('bearer');
  const b = make('B');
  try {
    await b.start();
    await expect.poll(() => started, { timeout: 5000 }).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const t0 = Date.now();
    const stopping = a.shutdown(1000);
    await expect.poll(() => b.role.role, { timeout: 8000, interval: 20 }).toBe('bearer');
    // Before: B waited for the whole 4 s statement.
    expect(Date.now() - t0).toBeLessThan(1500);
    await stopping;
    expect(committed).toEqual([]);
  } finally {
    await b.shutdown(1000);
  }
}, 20_000);
