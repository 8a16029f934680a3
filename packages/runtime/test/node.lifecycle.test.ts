import { connect } from '@nats-io/transport-node';
import { describeNats, useTestDatabase } from '@baton/testkit';
import { expect, it } from 'vitest';
import { decodeMessage, type NodeStatus } from '../src/index.js';
import { testNode } from './nodes.js';

const db = useTestDatabase();

it('a node shut down before it was started is stopped for good: start() refuses it', async () => {
  const node = testNode(db.url);
  expect(await node.shutdown(100)).toEqual({ status: 'stopped', reason: null });
  expect(node.lifecycle).toBe('stopped');
  await expect(node.start()).rejects.toThrow(/cannot start a node that is stopped/);
  expect(await node.exited).toEqual({ status: 'stopped', reason: null });
});

describeNats('a draining node on NATS', (natsUrl) => {
  it('answers the status subject until it has stopped, showing it draining', async () => {
    const group = `l${Math.random().toString(36).slice(2, 8)}`;
    const node = testNode(db.url, { groupId: group, nodeId: 'n1', nats: { servers: natsUrl } });
    let finish!: () => void;
    const gate = new Promise<void>((resolve) => (finish = resolve));
    let started = false;
    node.handle('slow', async () => {
      started = true;
      await gate;
    });
    const nc = await connect({ servers: natsUrl });
    try {
      await node.start();
      await node.client.enqueue({ type: 'slow' });
      await expect.poll(() => started, { timeout: 5000 }).toBe(true);
      const stopping = node.shutdown(10_000);
      const msg = await nc.request(`baton.${group}.status.n1`, new Uint8Array(0), {
        timeout: 2000,
      });
      const status = decodeMessage(msg.data) as NodeStatus;
      expect(status.lifecycle).toBe('draining');
      expect(status.actors.supervisor.state).toMatchObject({ draining: 'worker' });
      finish();
      expect(await stopping).toEqual({ status: 'stopped', reason: null });
    } finally {
      finish();
      await node.shutdown(1000);
      await nc.close();
    }
  });
});
