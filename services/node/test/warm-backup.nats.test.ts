import {
  describeNats,
  killNodesAfterEach,
  NodeProcess,
  OwnedNatsServer,
  useTestDatabase,
} from '@baton/testkit';
import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createEffectsTable, nodeEnv, waitFor } from './cluster.js';
import { warmBackupSuite } from './warm-backup.suite.js';

const db = useTestDatabase();

describeNats('warm backup on NATS', (natsUrl) => {
  describe('the warm-backup suite', () => {
    warmBackupSuite({ db, natsUrl });
  });

  describe('with NATS stopped', () => {
    killNodesAfterEach();

    it('failover still happens through PostgreSQL alone', async () => {
      const pool: pg.Pool = await createEffectsTable(db);
      await using server = await OwnedNatsServer.start();
      const group = `n${Math.random().toString(36).slice(2, 8)}`;
      const nodes = await Promise.all(
        ['x1', 'x2'].map((id) =>
          NodeProcess.start(id, nodeEnv({ db, natsUrl: server.url, group }, id)),
        ),
      );
      const holder = async () =>
        (
          await pool.query<{ holder: string; term: number; live: boolean }>(
            `select task_id as holder, term::int, lease_expires_at > now() as live from baton.token_holder where group_id = $1`,
            [group],
          )
        ).rows[0];
      const first = await waitFor('a bearer', holder, (b) => !!b?.live);
      await server.stop();
      await nodes.find((n) => n.name === first!.holder)!.kill();
      const next = await waitFor(
        'the other node takes over',
        holder,
        (b) => !!b?.live && b.holder !== first!.holder,
        10_000,
      );
      expect(next!.term).toBeGreaterThan(first!.term);
    });
  });
});
