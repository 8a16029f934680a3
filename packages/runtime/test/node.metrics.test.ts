import { useTestDatabase } from '@baton/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BatonNode } from '../src/index.js';
import { metricOf, testNode } from './nodes.js';

const db = useTestDatabase();
let node: BatonNode;
let release!: () => void;
const gate = new Promise<void>((resolve) => (release = resolve));

beforeAll(async () => {
  node = testNode(db.url, {
    nodeId: 'm1',
    worker: { concurrency: 7, pollIntervalMs: 50 },
    http: { port: 0 },
  });
  node.handle('slow', () => gate);
  await node.start();
});

afterAll(async () => {
  release();
  await node?.shutdown(1000);
});

const metric = (name: string) => metricOf(node, name);

it("/metrics shows the worker's pool and the group's members as the node sees them now", async () => {
  expect(await metric('baton_worker_pool_capacity')).toBe(7);
  // prom-client's process metrics come with them.
  expect(await metric('process_cpu_seconds_total')).toBeGreaterThan(0);
  await expect.poll(() => metric('baton_group_members{state="alive"}')).toBe(1);
  const { id } = await node.client.enqueue({ type: 'slow' });
  await expect.poll(async () => (await node.client.get(id))?.status).toBe('running');
  await expect.poll(() => metric('baton_worker_pool_active')).toBe(1);
  release();
  await expect.poll(async () => (await node.client.get(id))?.status).toBe('completed');
  await expect.poll(() => metric('baton_worker_pool_active')).toBe(0);
});
