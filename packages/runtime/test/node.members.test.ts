import { useTestDatabase } from '@baton/testkit';
import { afterEach, expect, it } from 'vitest';
import type { BatonNode } from '../src/index.js';
import { testNode } from './nodes.js';

const db = useTestDatabase();

let node: BatonNode | undefined;
afterEach(async () => {
  await node?.shutdown(1000);
  node = undefined;
});

const members = (n: BatonNode) =>
  (n.status().actors.watchdog?.context as { members: { nodeId: string; status: string }[] })
    .members;

it("deletes a killed node's health_check row once it is silent for 5 minutes, and leaves it out of the members", async () => {
  const pool = db.pool({ max: 1 });
  const group = `m${Math.random().toString(36).slice(2, 8)}`;
  await pool.query(
    `insert into baton.health_check (task_id, group_id, last_heartbeat) values
       ('killed-long-ago', $1, (now() at time zone 'utc') - interval '6 minutes'),
       ('killed-recently', $1, (now() at time zone 'utc') - interval '1 minute')`,
    [group],
  );
  node = testNode(db.url, { groupId: group, nodeId: 'n1' });
  await node.start();
  const rows = async () =>
    (
      await pool.query<{ task_id: string }>(
        'select task_id from baton.health_check where group_id = $1 order by task_id',
        [group],
      )
    ).rows.map((r) => r.task_id);
  await expect.poll(rows, { timeout: 5000 }).toEqual(['killed-recently', 'n1']);
  await expect
    .poll(
      () =>
        members(node!)
          .map((m) => `${m.nodeId}:${m.status}`)
          .sort(),
      { timeout: 5000 },
    )
    .toEqual(['killed-recently:gone', 'n1:alive']);
});
