/**
 * Scheduling with real node processes (issue #5): ticks are fired by the
 * group's token bearer only (the built-in `baton.schedules` service, fenced
 * by its term), each tick is materialised once in the whole cluster, and
 * ticks missed around a failover, a pause or a full outage follow the
 * waiting policy. Runs on NATS and on the PostgreSQL bus.
 *
 * Schedules are created through the typed client (`connectClient`, no node),
 * and run the fixture's `effect` handler, which writes one `test_effects`
 * row through the completion transaction: the executions are counted there.
 *
 * What "the right count" means under IGNORE: `maxCount` counts fired ticks,
 * not skipped ones, so an IGNORE schedule with `maxCount` 50 still fires 50
 * ticks; the due times missed while no bearer could fire are skipped (never
 * materialised, counted in `skippedCount`), so its 50 due times lie on the
 * interval grid with gaps whose sizes add up to `skippedCount`.
 */
import { connectClient, type ConnectedClient } from '@baton/runtime';
import { NodeProcess, type TestDatabase } from '@baton/testkit';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEffectsTable, nodeEnv, waitFor } from './cluster.js';

export interface SchedulesSuiteOptions {
  readonly db: TestDatabase;
  readonly natsUrl: string | undefined;
}

type Schedule = NonNullable<Awaited<ReturnType<ConnectedClient['scheduler']['getJob']>>>;

interface TickRow {
  due: number;
  fired: number;
  taskId: string | null;
  status: string | null;
  effects: number;
  nodes: string[];
}

/**
 * Prompt polling and rescue, so the suite runs in seconds; a liveness
 * interval of 1.5 s (heartbeat 0.25 s) rather than 0.5 s, so a loaded test
 * machine does not make the bearer step down between the kills the tests
 * make on purpose. The fixture's `tick` service is slowed to once a minute.
 */
const CLUSTER_ENV = {
  BATON_POLL_INTERVAL_MS: '50',
  BATON_LEASE_MS: '1500',
  BATON_HEARTBEAT_FREQUENCY: '0.25',
  BATON_LIVENESS_CHECK_INTERVAL: '1.5',
  TEST_SERVICE_INTERVAL: '60',
};

export function schedulesSuite({ db, natsUrl }: SchedulesSuiteOptions): void {
  let pool: pg.Pool;
  const clients: ConnectedClient[] = [];
  beforeAll(async () => {
    pool = await createEffectsTable(db);
  });
  afterAll(async () => {
    await NodeProcess.killAll();
    await Promise.all(clients.map((c) => c.close()));
  });

  const newGroup = () => `s${Math.random().toString(36).slice(2, 8)}`;
  /** Nodes of `group` working the queue `group` (so no other test's task runs there), once one bears the token. */
  const start = async (group: string, ids: readonly string[]) => {
    const nodes = await Promise.all(
      ids.map((id) =>
        NodeProcess.start(
          id,
          nodeEnv({ db, natsUrl, group, env: { ...CLUSTER_ENV, BATON_QUEUE: group } }, id),
        ),
      ),
    );
    await waitFor(
      'a bearer',
      () => bearer(group),
      (b) => !!b?.live && b.holder !== null,
      15_000,
    );
    return nodes;
  };
  const client = async (group: string) => {
    const c = await connectClient({
      database: { url: db.url, poolSize: 2 },
      ...(natsUrl ? { nats: { servers: natsUrl } } : {}),
      groupId: group,
      name: `test-${group}`,
    });
    clients.push(c);
    return c;
  };
  const job = (group: string) => ({ type: 'effect', queue: group });

  const dbNow = async () => (await pool.query<{ now: Date }>('select now()')).rows[0]!.now;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  const bearer = async (group: string) =>
    (
      await pool.query<{ holder: string | null; term: number; live: boolean }>(
        `select task_id as holder, term::int, lease_expires_at > now() as live from baton.token_holder where group_id = $1`,
        [group],
      )
    ).rows[0];

  /** A schedule's materialised ticks, with their tasks and the effects written for them. */
  const ticks = async (scheduleId: string): Promise<TickRow[]> =>
    (
      await pool.query<{
        due_at: Date;
        fired_at: Date;
        task_id: string | null;
        status: string | null;
        effects: number;
        nodes: string[] | null;
      }>(
        `select k.due_at, k.fired_at, k.task_id::text, t.status::text,
                (select count(*)::int from test_effects e where e.task_id = k.task_id) as effects,
                (select array_agg(e.node) from test_effects e where e.task_id = k.task_id) as nodes
           from baton.schedule_ticks k left join baton.tasks t on t.id = k.task_id
          where k.schedule_id = $1 order by k.due_at`,
        [scheduleId],
      )
    ).rows.map((r) => ({
      due: r.due_at.getTime(),
      fired: r.fired_at.getTime(),
      taskId: r.task_id,
      status: r.status,
      effects: r.effects,
      nodes: r.nodes ?? [],
    }));

  /** Tasks carrying the schedule's tick key (`schedule:<id>:<due>`). */
  const taskCount = async (scheduleId: string) =>
    (
      await pool.query<{ n: number }>(
        `select count(*)::int as n from baton.tasks where starts_with(idempotency_key, $1)`,
        [`schedule:${scheduleId}:`],
      )
    ).rows[0]!.n;

  /** Waits until the schedule is finished with `n` ticks, each task completed with its effect. */
  async function settled(c: ConnectedClient, id: string, n: number, timeoutMs = 30_000) {
    await waitFor(
      `schedule ${id} finished with ${n} executions`,
      async () => {
        const s = await c.scheduler.getJob(id);
        const t = await ticks(id);
        return {
          state: s?.state,
          fired: s?.firedCount,
          ticks: t.length,
          completed: t.filter((x) => x.status === 'completed' && x.effects > 0).length,
        };
      },
      (v) => v.state === 'finished' && v.ticks === n && v.completed === n,
      timeoutMs,
    );
    return { schedule: (await c.scheduler.getJob(id))!, ticks: await ticks(id) };
  }

  /** Every tick once: one task each, completed, with exactly one effect; distinct due times. */
  async function expectEachTickOnce(id: string, rows: TickRow[], n: number) {
    expect(rows).toHaveLength(n);
    expect(new Set(rows.map((r) => r.due)).size).toBe(n);
    expect(new Set(rows.map((r) => r.taskId)).size).toBe(n);
    for (const r of rows) {
      expect(r.taskId, `tick ${new Date(r.due).toISOString()}`).not.toBeNull();
      expect(r.status).toBe('completed');
      expect(r.effects, `effects of tick ${new Date(r.due).toISOString()}`).toBe(1);
    }
    expect(await taskCount(id)).toBe(n);
  }

  /** The grid step of each tick (`due = anchor + step * interval`); throws off the grid. */
  function steps(s: Schedule, rows: TickRow[], intervalMs: number): number[] {
    return rows.map((r) => {
      const offset = r.due - s.anchorAt.getTime();
      expect(offset % intervalMs, `tick ${new Date(r.due).toISOString()} on the grid`).toBe(0);
      return offset / intervalMs;
    });
  }

  /** WAIT: every grid point from the anchor, none missing, none skipped. */
  function expectContiguous(s: Schedule, rows: TickRow[], intervalMs: number) {
    expect(steps(s, rows, intervalMs)).toEqual(rows.map((_, i) => i));
    expect(s.skippedCount).toBe(0);
  }

  /**
   * IGNORE: ascending grid points whose gaps add up to `skippedCount`, and
   * no tick fired an interval or more after its due time (only the latest
   * due time is fired; `fired_at` and the instant compared with are the same
   * transaction's `now()`).
   */
  function expectSkippedGaps(s: Schedule, rows: TickRow[], intervalMs: number) {
    for (const r of rows) expect(r.fired - r.due).toBeLessThan(intervalMs);
    const st = steps(s, rows, intervalMs);
    const gaps = st.reduce((sum, x, i) => sum + (x - (i === 0 ? -1 : st[i - 1]!) - 1), 0);
    expect(gaps).toBe(s.skippedCount);
    expect(st.at(-1)).toBe(rows.length - 1 + s.skippedCount);
  }

  /*
   * One group and one cluster for the whole file (starting node processes
   * is the slow part): the tests run in order, the last two kill the bearer
   * and then stop every node, and each test creates schedules of its own.
   */
  describe('a cluster of 3 node processes', () => {
    const group = newGroup();
    let nodes: NodeProcess[] = [];
    let c: ConnectedClient;
    beforeAll(async () => {
      nodes = await start(group, ['c1', 'c2', 'c3']);
      c = await client(group);
    });

    it('3 nodes, interval 200 ms, maxCount 50: exactly 50 executions, each tick once', async () => {
      const id = await c.scheduler.scheduleJobRecurByFrequency(job(group), 0.2, { maxCount: 50 });
      const { schedule, ticks: rows } = await settled(c, id, 50);
      expect(schedule).toMatchObject({ firedCount: 50, skippedCount: 0, endReason: 'completed' });
      await expectEachTickOnce(id, rows, 50);
      expectContiguous(schedule, rows, 200);
      expect(await c.scheduler.getRunningJobs()).toEqual([]);
    });

    it('a one-time job at t+1 s runs once, on one node, not before its time', async () => {
      const at = new Date((await dbNow()).getTime() + 1000);
      const id = await c.scheduler.scheduleOneTimeJob(job(group), at);
      expect((await c.scheduler.getJob(id))!.nextDueAt).toEqual(at);
      const { schedule, ticks: rows } = await settled(c, id, 1, 10_000);
      expect(schedule).toMatchObject({ firedCount: 1, state: 'finished', endReason: 'completed' });
      await expectEachTickOnce(id, rows, 1);
      expect(rows[0]!.due).toBe(at.getTime());
      expect(rows[0]!.nodes).toHaveLength(1);
      const started = (
        await pool.query<{ started_at: Date }>(`select started_at from baton.tasks where id = $1`, [
          rows[0]!.taskId,
        ])
      ).rows[0]!.started_at;
      expect(started.getTime()).toBeGreaterThanOrEqual(at.getTime());
      // And never again.
      await sleep(600);
      expect(await ticks(id)).toHaveLength(1);
      expect(await taskCount(id)).toBe(1);
    });

    it('pause all, wait several intervals, resume: WAIT fires the missed ticks, IGNORE does not', async () => {
      const recur = (waitingPolicy: 'WAIT' | 'IGNORE') =>
        c.scheduler.scheduleJobRecurByFrequency(job(group), 0.2, { taskPolicy: { waitingPolicy } });
      const [wait, ignore] = await Promise.all([recur('WAIT'), recur('IGNORE')]);
      await waitFor(
        'a few ticks of each',
        async () => Promise.all([c.scheduler.getJob(wait), c.scheduler.getJob(ignore)]),
        (ss) => ss.every((s) => (s?.firedCount ?? 0) >= 3),
      );
      // (The count includes the finished schedules of the tests before, in the same group.)
      expect(await c.scheduler.pauseAllJobs()).toBeGreaterThanOrEqual(2);
      for (const id of [wait, ignore]) expect((await c.scheduler.getJob(id))!.paused).toBe(true);
      const pausedAt = (await c.scheduler.getJob(wait))!.updatedAt.getTime();
      const before = { wait: (await ticks(wait)).length, ignore: (await ticks(ignore)).length };
      expect(await c.scheduler.getRunningJobs()).toEqual([]);
      await sleep(1400); // 7 intervals
      // Durable and cluster-wide: nothing fired while paused.
      expect((await ticks(wait)).length).toBe(before.wait);
      expect((await ticks(ignore)).length).toBe(before.ignore);
      expect(await c.scheduler.resumeAllJobs()).toBeGreaterThanOrEqual(2);
      const resumedAt = (await c.scheduler.getJob(wait))!.updatedAt.getTime();
      expect((await c.scheduler.getRunningJobs()).map((s) => s.id).sort()).toEqual(
        [wait, ignore].sort(),
      );
      await waitFor(
        'ticks after the resume',
        async () => Promise.all([ticks(wait), ticks(ignore)]),
        ([w, i]) => w.some((t) => t.due > resumedAt) && i.some((t) => t.due > resumedAt),
        5000,
      );
      await c.scheduler.pauseAllJobs();
      const [ws, is] = [(await c.scheduler.getJob(wait))!, (await c.scheduler.getJob(ignore))!];
      const [wt, it_] = [await ticks(wait), await ticks(ignore)];
      const inPause = (rows: TickRow[]) =>
        rows.filter((t) => t.due > pausedAt && t.due <= resumedAt);

      // WAIT: every due time of the pause fired after the resume.
      expectContiguous(ws, wt, 200);
      expect(inPause(wt).length).toBeGreaterThanOrEqual(5);
      for (const t of inPause(wt)) expect(t.fired).toBeGreaterThan(pausedAt + 1000);

      // IGNORE: at most the latest of them fired, the rest were skipped.
      expect(inPause(it_).length).toBeLessThanOrEqual(1);
      expect(is.skippedCount).toBeGreaterThanOrEqual(5);
      expectSkippedGaps(is, it_, 200);

      for (const [id, rows] of [
        [wait, wt],
        [ignore, it_],
      ] as const) {
        await waitFor(
          'the fired ticks to run',
          () => ticks(id),
          (r) => r.length === rows.length && r.every((t) => t.status === 'completed'),
          10_000,
        );
        await expectEachTickOnce(id, await ticks(id), rows.length);
        await c.scheduler.unscheduleJob(id);
      }
    });

    it('SIGKILL the bearer halfway: WAIT still runs 50 ticks, every due time; IGNORE fires 50 and skips the ones missed in the failover', async () => {
      expect(nodes.filter((n) => n.running)).toHaveLength(3);
      const opts = (waitingPolicy: 'WAIT' | 'IGNORE' | 'LOG_AND_IGNORE') => ({
        maxCount: 50,
        taskPolicy: { waitingPolicy },
      });
      const [wait, ignore, logIgnore] = await Promise.all([
        c.scheduler.scheduleJobRecurByFrequency(job(group), 0.2, opts('WAIT')),
        c.scheduler.scheduleJobRecurByFrequency(job(group), 0.2, opts('IGNORE')),
        c.scheduler.scheduleJobRecurByFrequency(job(group), 0.2, opts('LOG_AND_IGNORE')),
      ]);
      await waitFor(
        'half of the ticks',
        () => c.scheduler.getJob(wait),
        (s) => (s?.firedCount ?? 0) >= 25,
      );
      const first = (await bearer(group))!;
      const victim = nodes.find((n) => n.name === first.holder)!;
      await victim.kill();
      const killedAt = (await dbNow()).getTime();
      const next = await waitFor(
        'a new bearer',
        () => bearer(group),
        (b) => !!b?.live && b.holder !== first.holder,
        10_000,
      );
      expect(next!.term).toBeGreaterThan(first.term);

      const w = await settled(c, wait, 50);
      const i = await settled(c, ignore, 50);
      const l = await settled(c, logIgnore, 50);

      // WAIT: exactly 50, on every grid point; the ones missed in the failover fired late.
      expect(w.schedule).toMatchObject({ firedCount: 50, skippedCount: 0 });
      await expectEachTickOnce(wait, w.ticks, 50);
      expectContiguous(w.schedule, w.ticks, 200);
      const late = w.ticks.filter((t) => t.due > killedAt - 200 && t.fired - t.due > 200);
      expect(late.length, 'WAIT ticks fired late after the failover').toBeGreaterThan(0);

      // The failover outlasted an interval (no firer from the kill to the new bearer's first fire).
      const outage =
        Math.min(...w.ticks.filter((t) => t.fired > killedAt).map((t) => t.fired)) - killedAt;
      expect(outage).toBeGreaterThan(200);

      // IGNORE and LOG_AND_IGNORE: 50 fired (maxCount counts fired ticks), the missed ones skipped.
      for (const [id, r] of [
        [ignore, i],
        [logIgnore, l],
      ] as const) {
        expect(r.schedule.firedCount).toBe(50);
        expect(r.schedule.skippedCount, `skipped by ${id}`).toBeGreaterThan(0);
        await expectEachTickOnce(id, r.ticks, 50);
        expectSkippedGaps(r.schedule, r.ticks, 200);
      }
      // LOG_AND_IGNORE: the new bearer logged what it skipped.
      const survivor = nodes.find((n) => n.name === next!.holder)!;
      expect(
        survivor.output.some(
          (line) => line.includes('schedule ticks missed and skipped') && line.includes(logIgnore),
        ),
      ).toBe(true);
      expect(
        survivor.output.some(
          (line) =>
            line.includes('schedule ticks missed and skipped') && line.includes(`"${ignore}"`),
        ),
      ).toBe(false);
    }, 120_000);

    it('all nodes stopped for 3 intervals and started again: WAIT fires the missed ticks, IGNORE skips them', async () => {
      // Whatever the test before left running (two nodes after its kill), then three anew.
      if (nodes.filter((n) => n.running).length < 2) nodes = await start(group, ['c4', 'c5', 'c6']);
      const live = nodes.filter((n) => n.running);
      const interval = 500;
      const recur = (waitingPolicy: 'WAIT' | 'IGNORE') =>
        c.scheduler.scheduleJobRecurByFrequency(job(group), interval / 1000, {
          maxCount: 12,
          taskPolicy: { waitingPolicy },
        });
      const [wait, ignore] = await Promise.all([recur('WAIT'), recur('IGNORE')]);
      await waitFor(
        'a few ticks of each',
        async () => Promise.all([c.scheduler.getJob(wait), c.scheduler.getJob(ignore)]),
        (ss) => ss.every((s) => (s?.firedCount ?? 0) >= 3),
      );
      for (const n of live) n.signal('SIGTERM');
      expect(await Promise.all(live.map((n) => n.exited))).toEqual(
        live.map(() => ({ code: 0, signal: null })),
      );
      const stoppedAt = (await dbNow()).getTime();
      const before = { wait: (await ticks(wait)).length, ignore: (await ticks(ignore)).length };
      // Schedules live in PostgreSQL: the outage loses nothing of them.
      expect((await c.scheduler.getRunningJobs()).map((s) => s.id).sort()).toEqual(
        [wait, ignore].sort(),
      );
      await sleep(3 * interval + 100);
      expect((await ticks(wait)).length).toBe(before.wait);
      nodes = await start(group, ['r1', 'r2', 'r3']);
      const w = await settled(c, wait, 12);
      const i = await settled(c, ignore, 12);
      // The outage, on PostgreSQL's clock: from the stop to the first fire after the restart.
      const firstFire = Math.min(
        ...[...w.ticks, ...i.ticks].filter((t) => t.fired > stoppedAt).map((t) => t.fired),
      );
      expect(firstFire - stoppedAt).toBeGreaterThan(3 * interval);
      const inOutage = (rows: TickRow[]) =>
        rows.filter((t) => t.due > stoppedAt && t.due <= firstFire);

      expect(w.schedule.firedCount).toBe(12);
      await expectEachTickOnce(wait, w.ticks, 12);
      expectContiguous(w.schedule, w.ticks, interval);
      expect(inOutage(w.ticks).length).toBeGreaterThanOrEqual(3);
      for (const t of inOutage(w.ticks)) expect(t.fired).toBeGreaterThanOrEqual(firstFire);

      expect(i.schedule.firedCount).toBe(12);
      expect(i.schedule.skippedCount).toBeGreaterThanOrEqual(2);
      await expectEachTickOnce(ignore, i.ticks, 12);
      expectSkippedGaps(i.schedule, i.ticks, interval);
      expect(inOutage(i.ticks).length).toBeLessThanOrEqual(1);
    }, 120_000);
  });
}
