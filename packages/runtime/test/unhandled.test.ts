import { createStore } from '@baton/store';
import { useTestDatabase } from '@baton/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { heartbeatPort } from '../src/adapters.js';
import { unhandledTasksService, UNHANDLED_PLAN } from '../src/coordination.js';
import { createMetrics } from '../src/observability/metrics.js';
import type { BatonNode } from '../src/index.js';
import { testNode } from './nodes.js';

const db = useTestDatabase();
const store = createStore({ connection: { connectionString: db.url, max: 2 } });
let node: BatonNode;
beforeAll(async () => {
  await store.migrate();
});
afterAll(async () => {
  await node?.shutdown(1000);
  await store.close();
});

const alive = { state: 'alive', inFlight: 0, concurrency: 1 } as const;
const run = (service: ReturnType<typeof unhandledTasksService>) =>
  service.execute({
    term: 1,
    signal: new AbortController().signal,
  } as Parameters<typeof service.execute>[0]);

it("a node's heartbeats say what it works: its queue and its handlers' types", async () => {
  node = testNode(db.url, { nodeId: 'w1', worker: { queue: 'mail' } });
  node.handle('email.send', () => undefined);
  node.handle('email.bounce', () => undefined);
  await node.start();
  await expect
    .poll(async () => (await store.nodes.member('w1', node.config.groupId))?.instance ?? null)
    .not.toBeNull();
  const { rows } = await db
    .pool({ max: 1 })
    .query<{ info: { queue: string; types: string[] } }>(
      `select info from baton.health_check where task_id = 'w1'`,
    );
  expect(rows[0]!.info.queue).toBe('mail');
  expect([...rows[0]!.info.types].sort()).toEqual(['email.bounce', 'email.send']);
});

it('the bearer reports tasks nobody handles in a gauge, and warns of each type at most every 10 minutes', async () => {
  const past = new Date(Date.now() - 120_000);
  await store.tasks.enqueueMany([
    { type: 'report.build', runAt: past },
    { type: 'report.biuld', runAt: past }, // a misspelt type
    { type: 'report.biuld', runAt: past },
  ]);
  await heartbeatPort(store.nodes, 'g-unhandled', {
    instance: 'i1',
    works: { queue: 'default', types: ['report.build'] },
    conflict: () => undefined,
  }).beat('worker-1', alive);

  const metrics = createMetrics();
  const warnings: unknown[] = [];
  let now = 0;
  const service = unhandledTasksService(UNHANDLED_PLAN, {
    store,
    metrics,
    logger: {
      info: () => undefined,
      warn: (message, fields) => warnings.push({ message, ...fields }),
      error: () => undefined,
    },
    now: () => now,
  });
  expect(service.runOnAcquire).toBe(false);
  await run(service);
  const gauge = async () =>
    (await metrics.tasksUnhandled.get()).values.map((v) => [
      v.labels.type,
      v.labels.queue,
      v.value,
    ]);
  expect(await gauge()).toEqual([['report.biuld', 'default', 2]]);
  expect(warnings).toEqual([
    expect.objectContaining({ type: 'report.biuld', queue: 'default', waiting: 2 }),
  ]);
  // Still unhandled a minute later: counted, not warned of again.
  now += 60_000;
  await run(service);
  expect(warnings).toHaveLength(1);
  now += 10 * 60_000;
  await run(service);
  expect(warnings).toHaveLength(2);
  // Handled at last: the gauge empties.
  await heartbeatPort(store.nodes, 'g-unhandled', {
    instance: 'i2',
    works: { queue: 'default', types: ['report.biuld'] },
    conflict: () => undefined,
  }).beat('worker-2', alive);
  await run(service);
  expect(await gauge()).toEqual([]);
});
