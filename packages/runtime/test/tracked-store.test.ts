import { useTestDatabase } from '@baton/testkit';
import { createStore, type Store } from '@baton/store';
import { beforeAll, expect, it } from 'vitest';
import { TrackedStore, type DeadLetter, type TaskEventItem } from '../src/tracked-store.js';
import { createMetrics } from '../src/observability/metrics.js';
import { LoopMonitor } from '../src/observability/health.js';

const db = useTestDatabase();
let store: Store;
beforeAll(() => {
  store = createStore({ pool: db.pool({ max: 2 }) });
});

function tracked() {
  const events: { status: string; tasks: readonly TaskEventItem[] }[] = [];
  const t = new TrackedStore(
    store.tasks,
    (status, tasks) => events.push({ status, tasks }),
    createMetrics(),
    new LoopMonitor(),
    { retryDelayMs: async () => undefined, deadLettered: async () => undefined },
  );
  return { t, events };
}

it('keeps a record per run until its final write, and drops it when the run ends without one', async () => {
  const { t, events } = tracked();
  const [a, b] = await store.tasks.enqueueMany([
    { type: 'x', payload: {} },
    { type: 'x', payload: {} },
  ]);
  const claimed = await t.claim({
    owner: 'n1',
    types: ['x'],
    limit: 2,
    leaseMs: 30_000,
    start: true,
  });
  expect(claimed.map((c) => c.id).sort()).toEqual([a!.id, b!.id].sort());
  expect(t.inFlight).toBe(2);

  // A run whose lease was lost (no write): its record goes, but only for its own attempt.
  t.forget({ id: a!.id, attempt: 2 });
  expect(t.inFlight).toBe(2);
  t.forget({ id: a!.id, attempt: 1 });
  expect(t.inFlight).toBe(1);

  await t.completeMany([{ id: b!.id, attempt: 1, result: null }]);
  expect(t.inFlight).toBe(0);
  expect(events.find((e) => e.status === 'completed')?.tasks).toEqual([
    { id: b!.id, type: 'x', attempt: 1 },
  ]);
});

it("keeps a run's record when a write or release for another attempt of its task is refused", async () => {
  const { t } = tracked();
  const [a] = await store.tasks.enqueueMany([{ type: 'y', payload: {} }]);
  await t.claim({ owner: 'n1', types: ['y'], limit: 1, leaseMs: 30_000, start: true });
  expect(t.inFlight).toBe(1);
  const [stale] = await t.completeMany([{ id: a!.id, attempt: 0, result: null }]);
  expect(stale).toMatchObject({ ok: false });
  expect(await t.release([{ id: a!.id, attempt: 0 }], 'n1')).toBe(0);
  expect(t.inFlight).toBe(1);
  await t.completeMany([{ id: a!.id, attempt: 1, result: null }]);
  expect(t.inFlight).toBe(0);
});

it('publishes a release under the status each task was left in, and nothing for a refused one', async () => {
  const { t, events } = tracked();
  const [a, b] = await store.tasks.enqueueMany([
    { type: 'z', payload: {} },
    { type: 'z', payload: {} },
  ]);
  await t.claim({ owner: 'n1', types: ['z'], limit: 2, leaseMs: 30_000, start: true });
  await store.tasks.cancel(b!.id, 'cli'); // running: cancel requested
  const released = await t.release(
    [
      { id: a!.id, attempt: 1 },
      { id: b!.id, attempt: 1 },
      { id: a!.id, attempt: 7 }, // not its attempt: refused
    ],
    'n1',
  );
  expect(released).toBe(2);
  expect(events.filter((e) => e.status === 'pending').flatMap((e) => e.tasks)).toEqual([
    { id: a!.id, type: 'z', attempt: 1 },
  ]);
  expect(events.filter((e) => e.status === 'cancelled').flatMap((e) => e.tasks)).toEqual([
    { id: b!.id, type: 'z', attempt: 1 },
  ]);
  expect(t.inFlight).toBe(0);
});

it('a renewed lease is progress: a node running a long handler is not reported stalled', async () => {
  let now = 0;
  const loop = new LoopMonitor({ stallThresholdMs: 1000, now: () => now });
  const t = new TrackedStore(store.tasks, () => undefined, createMetrics(), loop, {
    retryDelayMs: async () => undefined,
    deadLettered: async () => undefined,
  });
  await store.tasks.enqueueMany([{ type: 'long', payload: {} }]);
  const [run] = await t.claim({
    owner: 'n1',
    types: ['long'],
    limit: 1,
    leaseMs: 30_000,
    start: true,
  });
  // Every slot busy with that handler: the next claims find nothing.
  now = 900;
  await t.claim({ owner: 'n1', types: ['long'], limit: 1, leaseMs: 30_000, start: true });
  expect(loop.check().ok).toBe(true);
  now = 1500;
  await t.claim({ owner: 'n1', types: ['long'], limit: 1, leaseMs: 30_000, start: true });
  expect(loop.check().ok).toBe(false); // no lease renewed: stalled
  expect(await t.extendLease(run!, 30_000)).toMatchObject({ ok: true });
  expect(loop.check()).toMatchObject({ ok: true, lastProgressAgoMs: 0 });
  now = 2400;
  expect(loop.check().ok).toBe(true);
});

it("a rescue's events name each task's type and expired attempt; a dead letter gets its schedule's error policy", async () => {
  const policies: string[] = [];
  const events: { status: string; tasks: readonly TaskEventItem[] }[] = [];
  const emit = (status: string, tasks: readonly TaskEventItem[]) => events.push({ status, tasks });
  const dead: DeadLetter[] = [];
  const metrics = createMetrics();
  const t = new TrackedStore(
    store.tasks,
    emit,
    metrics,
    new LoopMonitor(),
    {
      retryDelayMs: async () => undefined,
      deadLettered: async (taskId) => void policies.push(taskId),
    },
    (task) => dead.push(task),
  );
  const [spent, again] = await store.tasks.enqueueMany([
    { type: 'rescued', payload: {}, maxAttempts: 1 },
    { type: 'rescued', payload: {}, maxAttempts: 3 },
  ]);
  // A node claims both and dies: their leases expire.
  await store.tasks.claim({
    owner: 'dead',
    types: ['rescued'],
    limit: 2,
    leaseMs: 50,
    start: true,
  });
  await new Promise((resolve) => setTimeout(resolve, 120));
  const rescued = await t.rescueExpired({ node: 'n1' });
  expect(rescued).toEqual(
    expect.arrayContaining([
      { id: spent!.id, status: 'dead_letter', type: 'rescued', attempt: 1 },
      { id: again!.id, status: 'retry', type: 'rescued', attempt: 1 },
    ]),
  );
  expect(policies).toEqual([spent!.id]);
  expect(dead).toEqual([{ id: spent!.id, type: 'rescued', attempt: 1, error: 'lease expired' }]);
  // Counted as the run's own retries and dead letters are.
  const value = async (c: typeof metrics.taskRetries) =>
    (await c.get()).values.find((v) => v.labels.type === 'rescued')?.value;
  expect(await value(metrics.taskRetries)).toBe(1);
  expect(await value(metrics.tasksDeadLettered)).toBe(1);
  expect(events.filter((e) => e.status !== 'claimed' && e.status !== 'running')).toEqual(
    expect.arrayContaining([
      { status: 'retry', tasks: [{ id: again!.id, type: 'rescued', attempt: 1 }] },
      { status: 'dead_letter', tasks: [{ id: spent!.id, type: 'rescued', attempt: 1 }] },
    ]),
  );
});

it('reports a task its run dead-lettered, with its type, attempt and error; a retried one is not', async () => {
  const dead: DeadLetter[] = [];
  const t = new TrackedStore(
    store.tasks,
    () => undefined,
    createMetrics(),
    new LoopMonitor(),
    { retryDelayMs: async () => undefined, deadLettered: async () => undefined },
    (task) => dead.push(task),
  );
  const [fatal, again] = await store.tasks.enqueueMany([
    { type: 'doomed', payload: {} },
    { type: 'doomed', payload: {} },
  ]);
  await t.claim({ owner: 'n1', types: ['doomed'], limit: 2, leaseMs: 30_000, start: true });
  await t.fail({ id: again!.id, attempt: 1, error: { message: 'try again' } });
  await t.fail({ id: fatal!.id, attempt: 1, error: { message: 'bad input' }, retryable: false });
  expect(dead).toEqual([{ id: fatal!.id, type: 'doomed', attempt: 1, error: 'bad input' }]);
});
