import { useTestDatabase } from '@baton/testkit';
import { afterAll, expect, it } from 'vitest';
import type { BatonNode } from '../src/index.js';
import { testNode } from './nodes.js';

const db = useTestDatabase();
const nodes: BatonNode[] = [];
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.shutdown(1000)));
});

it('the client reads the status of every node of its group, or of one, from the status subject', async () => {
  const groupId = `c${Math.random().toString(36).slice(2, 8)}`;
  for (const nodeId of ['b', 'a']) {
    const node = testNode(db.url, { groupId, nodeId });
    nodes.push(node);
    await node.start();
  }
  // Another group's node is not asked.
  const other = testNode(db.url, { nodeId: 'z' });
  nodes.push(other);
  await other.start();

  const all = await nodes[0]!.client.status({ maxWaitMs: 1500 });
  expect(all.map((s) => [s.nodeId, s.groupId, s.lifecycle])).toEqual([
    ['a', groupId, 'running'],
    ['b', groupId, 'running'],
  ]);
  expect(all[0]!.actors.supervisor.state).toBe('running');
  const one = await nodes[0]!.client.status({ nodeId: 'a' });
  expect(one.map((s) => s.nodeId)).toEqual(['a']);
  expect(await nodes[0]!.client.status({ nodeId: 'nobody', maxWaitMs: 200 })).toEqual([]);
});
