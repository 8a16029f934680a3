import { useTestDatabase } from '@baton/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPostgresBus, encodeAs, type BatonNode } from '../src/index.js';
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

it('counts a duplicate submission not as enqueued, and a refused one under the code its submitter was told', async () => {
  const bus = await createPostgresBus({ connectionString: db.url, poolSize: 2 });
  try {
    const subject = `baton.${node.config.groupId}.submit.dup`;
    const submit = async (body: Record<string, unknown>) =>
      JSON.parse(
        new TextDecoder().decode(
          await bus.request(subject, encodeAs('json', body), { timeoutMs: 5000 }),
        ),
      ) as { ok: boolean; duplicate?: boolean; error?: { code: string } };
    const enqueued = () => metric('baton_tasks_enqueued_total{type="dup"}');
    expect(await submit({ idempotencyKey: 'dup-1' })).toMatchObject({ ok: true, duplicate: false });
    expect(await submit({ idempotencyKey: 'dup-1' })).toMatchObject({ ok: true, duplicate: true });
    expect(await enqueued()).toBe(1);
    expect(await submit({ priority: 'high' })).toMatchObject({
      ok: false,
      error: { code: 'INVALID_ARGUMENT' },
    });
    expect(await metric('baton_submissions_rejected_total{reason="INVALID_ARGUMENT"}')).toBe(1);
  } finally {
    await bus.close();
  }
});
