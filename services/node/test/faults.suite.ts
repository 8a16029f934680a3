/**
 * The fault tests of real node processes, for either bus: the same suite runs
 * on NATS (faults.nats.test.ts) and on PostgreSQL LISTEN/NOTIFY
 * (faults.postgres.test.ts). Submissions and status requests go through the
 * bus under test.
 */
import { NodeProcess, killNodesAfterEach, type TestDatabase } from '@baton/testkit';
import type pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeMessage, encodeAs, type Bus, type NodeStatus } from '@baton/runtime';
import { createEffectsTable, nodeEnv, waitFor } from './cluster.js';

export interface FaultSuiteOptions {
  readonly db: TestDatabase;
  /** NATS for the nodes, or undefined for the PostgreSQL bus. */
  readonly natsUrl: string | undefined;
  /** A client bus of the same kind as the nodes'. */
  readonly openBus: () => Promise<Bus>;
}

/** The attempts a task submitted without maxAttempts gets (the store's default). */
const DEFAULT_MAX_ATTEMPTS = 5;

export function faultSuite({ db, natsUrl, openBus }: FaultSuiteOptions): void {
  let pool: pg.Pool;
  let bus: Bus;

  beforeAll(async () => {
    pool = await createEffectsTable(db);
    bus = await openBus();
  });
  killNodesAfterEach();
  afterAll(async () => {
    await bus?.close();
  });

  const request = async (subject: string, body: unknown) =>
    JSON.parse(
      new TextDecoder().decode(
        await bus.request(subject, encodeAs('json', body), { timeoutMs: 10_000 }),
      ),
    ) as { id: string };

  const newGroup = () => `f${Math.random().toString(36).slice(2, 8)}`;
  const env = { BATON_LEASE_MS: '1500' };
  const start = (group: string, ids: string[], extra: Record<string, string> = {}, url = natsUrl) =>
    Promise.all(
      ids.map((id) =>
        NodeProcess.start(id, nodeEnv({ db, natsUrl: url, group, env: { ...env, ...extra } }, id)),
      ),
    );

  async function submit(group: string, type: string, payload: unknown, n = 1, extra: object = {}) {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      ids.push((await request(`baton.${group}.submit.${type}`, { payload, ...extra })).id);
    }
    return ids;
  }

  const tasksOf = async (ids: string[]) =>
    (
      await pool.query<{
        id: string;
        status: string;
        attempt: number;
        max_attempts: number;
        lease_owner: string | null;
      }>(
        'select id::text, status::text, attempt, max_attempts, lease_owner from baton.tasks where id = any($1::bigint[]) order by id',
        [ids],
      )
    ).rows;

  const effectsOf = async (ids: string[]) =>
    (
      await pool.query<{ task_id: string; attempt: number; node: string }>(
        'select task_id::text, attempt, node from test_effects where task_id = any($1::bigint[])',
        [ids],
      )
    ).rows;

  async function statusOf(group: string, node: string): Promise<NodeStatus> {
    const reply = await bus.request(`baton.${group}.status.${node}`, new Uint8Array(0), {
      timeoutMs: 5000,
    });
    return decodeMessage(reply) as NodeStatus;
  }

  it('SIGKILL of a node running tasks: they run again on another node after the lease, each effect once', async () => {
    const group = newGroup();
    const nodes = await start(group, ['k1', 'k2', 'k3']);
    const ids = await submit(group, 'effect', { ms: 2500 }, 12);
    const running = await waitFor(
      'tasks to run',
      () => tasksOf(ids),
      (t) => t.filter((x) => x.status === 'running').length >= 3,
    );
    const owners = running.filter((t) => t.status === 'running').map((t) => t.lease_owner!);
    const victimId = owners.sort(
      (a, b) => owners.filter((o) => o === b).length - owners.filter((o) => o === a).length,
    )[0]!;
    const owned = running
      .filter((t) => t.lease_owner === victimId && t.status === 'running')
      .map((t) => t.id);
    expect(owned.length).toBeGreaterThan(0);
    await nodes.find((n) => n.name === victimId)!.kill();
    const done = await waitFor(
      'every task completed',
      () => tasksOf(ids),
      (t) => t.every((x) => x.status === 'completed'),
    );
    for (const t of done.filter((x) => owned.includes(x.id))) {
      expect(t.attempt, `task ${t.id}`).toBe(2);
      expect(t.lease_owner).not.toBe(victimId);
    }
    const effects = await effectsOf(ids);
    expect(effects).toHaveLength(ids.length);
    expect(new Set(effects.map((e) => e.task_id)).size).toBe(ids.length);
    expect(effects.filter((e) => owned.includes(e.task_id)).every((e) => e.node !== victimId)).toBe(
      true,
    );
  });

  it('SIGSTOP past the lease, then SIGCONT: the late completion of the stale attempt is refused', async () => {
    const group = newGroup();
    const [paused] = await start(group, ['p1']);
    const ids = await submit(group, 'effect', { ms: 3000 }, 4);
    await waitFor(
      'p1 to run tasks',
      () => tasksOf(ids),
      (t) => t.every((x) => x.status === 'running' && x.lease_owner === 'p1'),
    );
    paused!.pause();
    await start(group, ['p2']);
    await waitFor(
      'the rescued tasks completed by p2',
      () => tasksOf(ids),
      (t) => t.every((x) => x.status === 'completed'),
      30_000,
    );
    paused!.resume();
    const status = await waitFor(
      'p1 to report its refused completions',
      // Just resumed, p1 may still be reconnecting: a request that times out is retried.
      () => statusOf(group, 'p1').catch(() => null),
      (s) => Number(s?.actors.worker?.context.stale ?? 0) > 0,
      20_000,
    );
    expect(Number(status!.actors.worker!.context.stale)).toBeGreaterThan(0);
    // Each task's effect exists once, written by the attempt that completed it.
    const effects = await effectsOf(ids);
    expect(effects).toHaveLength(ids.length);
    const final = await tasksOf(ids);
    for (const e of effects) {
      const t = final.find((x) => x.id === e.task_id)!;
      expect({ attempt: e.attempt, node: e.node }).toEqual({
        attempt: t.attempt,
        node: t.lease_owner,
      });
    }
    expect(effects.some((e) => e.node === 'p2')).toBe(true);
  });

  it('SIGTERM: in-flight tasks finish, nothing is lost, the process exits 0 within the grace period', async () => {
    const group = newGroup();
    const [node] = await start(group, ['t1'], { BATON_SHUTDOWN_GRACE_MS: '5000' });
    const ids = await submit(group, 'effect', { ms: 600 }, 6);
    await waitFor(
      't1 to run tasks',
      () => tasksOf(ids),
      (t) => t.some((x) => x.status === 'running'),
    );
    const t0 = Date.now();
    node!.signal('SIGTERM');
    const exit = await node!.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(5000 + 2000);
    const after = await tasksOf(ids);
    // Every task either finished or was given back untouched (attempt not charged).
    for (const t of after) {
      expect(['completed', 'pending']).toContain(t.status);
      // Released: its attempt number kept, one more try to make up for it.
      if (t.status === 'pending') expect(t.max_attempts - t.attempt).toBe(DEFAULT_MAX_ATTEMPTS);
    }
    expect(after.filter((t) => t.status === 'completed').length).toBeGreaterThan(0);
    await start(group, ['t2']);
    await waitFor(
      'the rest completed by t2',
      () => tasksOf(ids),
      (t) => t.every((x) => x.status === 'completed'),
    );
    expect(await effectsOf(ids)).toHaveLength(ids.length);
  });

  it('a handler that throws is retried then dead-lettered; one that times out is aborted; a non-retryable one dead-letters at once; a running one is cancelled', async () => {
    const group = newGroup();
    await start(group, ['h1']);
    const [boom] = await submit(group, 'boom', null, 1, { maxAttempts: 3 });
    const [fatal] = await submit(group, 'fatal', null, 1, { maxAttempts: 3 });
    const [hang] = await submit(group, 'hang', null, 1, { maxAttempts: 1 });
    const [wait] = await submit(group, 'wait', null, 1);
    await waitFor(
      'wait to run',
      () => tasksOf([wait!]),
      (t) => t[0]?.status === 'running',
    );
    expect((await statusOf(group, 'h1')).actors.worker).not.toBeNull();
    await pool.query(`update baton.tasks set cancel_requested = true where id = $1`, [wait]);
    await bus.publish(`baton.${group}.cancel`, new Uint8Array([0xc1])); // a malformed hint must not hurt
    const final = await waitFor(
      'all four to end',
      () => tasksOf([boom!, fatal!, hang!, wait!]),
      (t) => t.every((x) => ['dead_letter', 'cancelled'].includes(x.status)),
      60_000,
    );
    const byId = Object.fromEntries(final.map((t) => [t.id, t]));
    expect(byId[boom!]).toMatchObject({ status: 'dead_letter', attempt: 3 });
    expect(byId[fatal!]).toMatchObject({ status: 'dead_letter', attempt: 1 });
    expect(byId[hang!]).toMatchObject({ status: 'dead_letter', attempt: 1 });
    expect(byId[wait!]).toMatchObject({ status: 'cancelled' });
    const hangError = await pool.query<{ last_error: { message: string } }>(
      'select last_error from baton.tasks where id = $1',
      [hang],
    );
    expect(hangError.rows[0]!.last_error.message).toMatch(/timed out/);
  });
}
