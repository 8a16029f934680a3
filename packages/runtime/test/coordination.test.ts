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

it("a service's fenced write whose connection dies rejects to the service alone: no unhandled rejection, the node keeps running", async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const caught: Error[] = [];
    let runs = 0;
    node = testNode(db.url, { nodeId: 'c1' });
    node.service('dies', {
      trigger: { interval: 0.05 },
      execute: async (ctx) => {
        runs++;
        // The session ends under the fenced transaction, as when PostgreSQL
        // ends a paused process's idle transaction.
        await ctx
          .fenced(async (tx) => {
            await tx.query('select pg_terminate_backend(pg_backend_pid())');
          })
          .catch((error: Error) => caught.push(error));
      },
    });
    await node.start();
    await expect.poll(() => caught.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    // Let any stray rejection of those writes surface before looking.
    await new Promise((r) => setTimeout(r, 100));
    expect(unhandled).toEqual([]);
    expect(caught[0]!.message).toMatch(/terminat|connection/i);
    expect(node.role.role).toBe('bearer');
    expect(runs).toBeGreaterThanOrEqual(3);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
