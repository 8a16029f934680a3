import { connect, type NatsConnection } from '@nats-io/transport-node';
import { describeNats, NodeProcess, useTestDatabase } from '@baton/testkit';
import type pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEffectsTable, startNodes, waitFor } from './cluster.js';

const db = useTestDatabase();

describeNats('three node processes on NATS', (natsUrl) => {
  const group = `c${Math.random().toString(36).slice(2, 8)}`;
  let nc: NatsConnection;
  let pool: pg.Pool;

  beforeAll(async () => {
    pool = await createEffectsTable(db);
    await startNodes({ db, natsUrl, group }, ['n1', 'n2', 'n3']);
    nc = await connect({ servers: natsUrl });
  });

  afterAll(async () => {
    await nc?.close();
    await NodeProcess.killAll();
  });

  const counts = async () =>
    (
      await pool.query<{ status: string; n: number }>(
        'select status::text, count(*)::int as n from baton.tasks group by 1',
      )
    ).rows.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.status]: r.n }), {});

  it('2,000 tasks published as JSON with the plain NATS client all complete, each effect exactly once', async () => {
    const replies = await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        nc.request(`baton.${group}.submit.effect`, JSON.stringify({ payload: { i } }), {
          timeout: 10_000,
        }),
      ),
    );
    const ids = replies.map((r) => (JSON.parse(r.string()) as { id: string }).id);
    expect(new Set(ids).size).toBe(2000);
    await waitFor('2,000 completions', counts, (c) => c.completed === 2000, 60_000);
    const { rows } = await pool.query<{ n: number; distinct_tasks: number; nodes: number }>(
      'select count(*)::int as n, count(distinct task_id)::int as distinct_tasks, count(distinct node)::int as nodes from test_effects',
    );
    expect(rows[0]).toMatchObject({ n: 2000, distinct_tasks: 2000 });
    expect(rows[0]!.nodes).toBeGreaterThan(1);
  });
});
