import { createStore } from '@baton/store';
import { useTestDatabase } from '@baton/testkit';
import { afterEach, expect, it } from 'vitest';
import { heartbeatPort } from '../src/adapters.js';
import type { BatonNode } from '../src/index.js';
import { testNode } from './nodes.js';

const db = useTestDatabase();
const group = () => `d${Math.random().toString(36).slice(2, 8)}`;

const nodes: BatonNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.shutdown(1000)));
});

it('a node refuses to start under the id of a live node of its group; the live one keeps its token', async () => {
  const g = group();
  const first = testNode(db.url, { groupId: g, nodeId: 'same' });
  nodes.push(first);
  await first.start();
  await expect.poll(() => first.role.role, { timeout: 5000 }).toBe('bearer');
  const term = first.role.term;

  const second = testNode(db.url, { groupId: g, nodeId: 'same' });
  await expect(second.start()).rejects.toThrow(/nodeId: "same" is in use by a live node/);
  expect(second.lifecycle).toBe('failed');
  // The first never lost its token to the second.
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(first.role).toEqual({ role: 'bearer', term });
  // The same id in another group is another node.
  const other = testNode(db.url, { groupId: group(), nodeId: 'same' });
  nodes.push(other);
  await other.start();
});

it('a node restarted under its id soon after its process ended starts (its row is silent)', async () => {
  const g = group();
  const pool = db.pool({ max: 1 });
  // The row of a process that ended a moment ago, without leaving.
  await pool.query(
    `insert into baton.health_check (task_id, group_id, last_heartbeat, info)
     values ('again', $1, now() at time zone 'utc', '{"instance":"ended"}')`,
    [g],
  );
  const node = testNode(db.url, { groupId: g, nodeId: 'again' });
  nodes.push(node);
  await node.start();
  expect(node.lifecycle).toBe('running');
});

it('a heartbeat that finds its row written by another instance since its last beat reports the other', async () => {
  const store = createStore({ connection: { connectionString: db.url, max: 2 } });
  try {
    await store.migrate();
    const g = group();
    const seen: (string | null)[] = [];
    const alive = { state: 'alive', inFlight: 0, concurrency: 1 } as const;
    const port = heartbeatPort(store.nodes, g, {
      instance: 'mine',
      conflict: (other) => seen.push(other.instance),
    });
    // The first beat may replace a process that has just ended: not a conflict.
    await store.nodes.beat('n', g, { instance: 'ended' });
    await port.beat('n', alive);
    await port.beat('n', alive);
    expect(seen).toEqual([]);
    // Another live process beats under the same id.
    await store.nodes.beat('n', g, { instance: 'theirs' });
    await port.beat('n', alive);
    expect(seen).toEqual(['theirs']);
    expect((await store.nodes.member('n', g))?.instance).toBe('mine');
  } finally {
    await store.close();
  }
});
