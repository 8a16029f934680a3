import { useTestDatabase } from '@baton/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BatonNode } from '../src/index.js';
import { metricOf, testNode } from './nodes.js';

const db = useTestDatabase();
let node: BatonNode;

beforeAll(async () => {
  node = testNode(db.url, {
    nodeId: 'r1',
    worker: { pollIntervalMs: 50 },
    http: { port: 0 },
    // Completed and dead-lettered tasks go after 0.3 s, cancelled ones are kept.
    retention: { completed: 0.3, deadLetter: 0.3, cancelled: null, interval: 0.1 },
  });
  node.handle('ok', () => 'done');
  node.service('tick', { trigger: { interval: 0.05 }, execute: async () => {} });
  node.handle('bad', () => {
    throw Object.assign(new Error('no'), { retryable: false });
  });
  await node.start();
});

afterAll(async () => {
  await node?.shutdown(1000);
});

const metric = (name: string) => metricOf(node, name);

it('the bearer deletes finished tasks past their retention, per status, and keeps what is kept forever', async () => {
  const { client } = node;
  const done = await client.enqueue({ type: 'ok' });
  const dead = await client.enqueue({ type: 'bad', maxAttempts: 1 });
  const cancelled = await client.enqueue({ type: 'ok', runAt: new Date(Date.now() + 3_600_000) });
  await client.cancel(cancelled.id);
  await expect.poll(async () => (await client.get(done.id))?.status).toBe('completed');
  await expect.poll(async () => (await client.get(dead.id))?.status).toBe('dead_letter');

  await expect.poll(() => client.get(done.id), { timeout: 5000 }).toBeNull();
  await expect.poll(() => client.get(dead.id), { timeout: 5000 }).toBeNull();
  const history = await db
    .pool()
    .query<{ n: number }>(
      'select count(*)::int as n from baton.task_history where task_id = any($1::bigint[])',
      [[done.id, dead.id]],
    );
  expect(history.rows[0]!.n).toBe(0);
  expect(await metric('baton_tasks_pruned_total{status="completed"}')).toBe(1);
  expect(await metric('baton_tasks_pruned_total{status="dead_letter"}')).toBe(1);
  // Several more runs later, the cancelled task is still there.
  await new Promise((r) => setTimeout(r, 500));
  expect((await client.get(cancelled.id))?.status).toBe('cancelled');
  expect(await metric('baton_tasks_pruned_total{status="cancelled"}')).toBeUndefined();
});

it('the run log of coordinated services is pruned like completed tasks; their counts stay', async () => {
  await new Promise((r) => setTimeout(r, 2000));
  const { rows } = await db.pool().query<{ old: number; logged: number; counted: number }>(
    `select (select count(*)::int from baton.service_runs
              where service = 'tick' and started_at < now() - interval '1200 milliseconds') as old,
            (select count(*)::int from baton.service_runs where service = 'tick') as logged,
            (select runs::int from baton.service_run_counts where service = 'tick') as counted`,
  );
  expect(rows[0]!.old).toBe(0);
  expect(rows[0]!.counted).toBeGreaterThan(rows[0]!.logged);
});
