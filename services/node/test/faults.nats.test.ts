import { connect } from '@nats-io/transport-node';
import {
  describeNats,
  killNodesAfterEach,
  NodeProcess,
  OwnedNatsServer,
  useTestDatabase,
} from '@baton/testkit';
import type pg from 'pg';
import { beforeAll, describe, it } from 'vitest';
import { createNatsBus } from '@baton/runtime';
import { createEffectsTable, nodeEnv, waitFor } from './cluster.js';
import { faultSuite } from './faults.suite.js';

const db = useTestDatabase();

const tasksOf = async (pool: pg.Pool, ids: string[]) =>
  (
    await pool.query<{ id: string; status: string }>(
      'select id::text, status::text from baton.tasks where id = any($1::bigint[])',
      [ids],
    )
  ).rows;

describeNats('node processes under faults, on NATS', (natsUrl) => {
  describe('the fault suite', () => {
    faultSuite({ db, natsUrl, openBus: () => createNatsBus({ servers: natsUrl }) });
  });

  describe('a NATS server restart', () => {
    let pool: pg.Pool;
    beforeAll(async () => {
      pool = await createEffectsTable(db);
    });
    killNodesAfterEach();

    it('nats-server restarted under load: work resumes without restarting the nodes', async () => {
      await using server = await OwnedNatsServer.start();
      const group = `r${Math.random().toString(36).slice(2, 8)}`;
      await Promise.all(
        ['r1', 'r2'].map((id) =>
          NodeProcess.start(
            id,
            nodeEnv(
              { db, natsUrl: server.url, group, env: { BATON_POLL_INTERVAL_MS: '60000' } },
              id,
            ),
          ),
        ),
      );
      const own = await connect({ servers: server.url });
      const send = async (n: number) => {
        const replies = await Promise.all(
          Array.from({ length: n }, (_, i) =>
            own.request(`baton.${group}.submit.effect`, JSON.stringify({ payload: { i } }), {
              timeout: 10_000,
            }),
          ),
        );
        return replies.map((r) => (JSON.parse(r.string()) as { id: string }).id);
      };
      const first = await send(100);
      await waitFor(
        'first batch',
        () => tasksOf(pool, first),
        (t) => t.every((x) => x.status === 'completed'),
      );
      await server.stop();
      await new Promise((r) => setTimeout(r, 500));
      await server.restart();
      // The poll interval is a minute: only working subscriptions (wake-ups) can drain this in time.
      const second = await waitFor(
        'a submission after the restart',
        () => send(100).catch(() => null),
        (ids) => ids !== null,
        20_000,
      );
      await waitFor(
        'second batch',
        () => tasksOf(pool, second!),
        (t) => t.every((x) => x.status === 'completed'),
        20_000,
      );
      await own.close();
    });
  });
});
