import { expect, it } from 'vitest';
import { useStore } from './helpers.js';

const ctx = useStore();

it('finds due tasks whose type and queue no live node handles, by its heartbeat info', async () => {
  const { tasks, nodes, pool } = ctx.store;
  const past = new Date(Date.now() - 120_000);
  await tasks.enqueueMany([
    { type: 'u.handled', runAt: past },
    { type: 'u.orphan', runAt: past },
    { type: 'u.orphan', runAt: past },
    // Handled, but in a queue its node does not work.
    { type: 'u.handled', queue: 'u_other', runAt: past },
    // Handled only by a node that stopped beating.
    { type: 'u.dead', runAt: past },
    // Not due long enough yet.
    { type: 'u.fresh' },
  ]);
  await nodes.beat('u-live', 'u-group', { queue: 'default', types: ['u.handled', 'u.fresh'] });
  // A node of another group in the same schema: the tasks are the schema's.
  await nodes.beat('u-other-group', 'u-group-2', { queue: 'default', types: ['u.mine'] });
  await nodes.beat('u-dead', 'u-group', { queue: 'default', types: ['u.dead'] });
  await pool.query(
    `update baton.health_check set last_heartbeat = last_heartbeat - interval '1 hour' where task_id = 'u-dead'`,
  );
  await tasks.enqueueMany([{ type: 'u.mine', runAt: past }]);
  // A node of an older version, whose info names no types, handles nothing here.
  await nodes.beat('u-old', 'u-group', { state: 'alive' });

  const found = await tasks.unhandled({ dueForMs: 60_000, liveWithinMs: 30_000 });
  expect(found.filter((f) => f.type.startsWith('u.'))).toEqual([
    { type: 'u.orphan', queue: 'default', count: 2 },
    { type: 'u.dead', queue: 'default', count: 1 },
    { type: 'u.handled', queue: 'u_other', count: 1 },
  ]);
});
