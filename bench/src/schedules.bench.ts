/**
 * `pnpm bench schedules` (issue #5): 1,000 active interval schedules fired by
 * a cluster of 3 real node processes for 60 s.
 *
 * - Schedules: interval BENCH_SCHEDULES_INTERVAL_MS (default 1000), WAIT,
 *   anchors spread evenly over one interval (so the ticks arrive at a steady
 *   rate, not in a burst per second), `maxCount` = seconds * 1000 / interval,
 *   all created through the store before the first anchor.
 * - Lateness: from a tick's due time to the start of its handler. The due
 *   time is the tick's (`schedule_ticks.due_at`, on PostgreSQL's grid); the
 *   handler notes `new Date()` as it starts (bench/src/schedules.handlers.ts)
 *   on the host's clock. PostgreSQL runs on the same host, so both clocks are
 *   the same system clock; the offset between them is measured and reported
 *   (`clock.offsetMs`), and subtracted. Two parts of it are also reported on
 *   PostgreSQL's clock alone: fire (due -> materialised, the bearer's firing
 *   period) and claim (due -> a worker claimed and started the task: the
 *   worker's poll, as the firer sends no wake-up hint).
 * - Ticks lost or doubled, which must be 0: per schedule, the expected due
 *   times (anchor + k * interval, k < maxCount) against the materialised
 *   ticks; a tick key with more than one task, a task with more than one
 *   effect row, a tick without a completed run.
 *
 * Environment: BENCH_SCHEDULES (count, default 1000),
 * BENCH_SCHEDULES_SECONDS (default 60), BENCH_SCHEDULES_INTERVAL_MS
 * (default 1000), BENCH_SCHEDULES_POLL_MS (the nodes' worker poll, default
 * the node's own default, 1000 ms), BATON_HEARTBEAT_FREQUENCY and
 * BATON_LIVENESS_CHECK_INTERVAL (default 0.25 and 2 s), DATABASE_URL / NATS_URL as for the other benches
 * (without NATS_URL the nodes use the PostgreSQL bus).
 */
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { scheduleCalendar } from '@baton/runtime';
import { createScheduleStore, createStore } from '@baton/store';
import { NodeProcess } from '@baton/testkit';
import { benchDatabase, machine, percentile, printTable, round, writeResults } from './lib.js';

const COUNT = Number(process.env.BENCH_SCHEDULES ?? 1000);
const SECONDS = Number(process.env.BENCH_SCHEDULES_SECONDS ?? 60);
const INTERVAL_MS = Number(process.env.BENCH_SCHEDULES_INTERVAL_MS ?? 1000);
const POLL_MS = process.env.BENCH_SCHEDULES_POLL_MS;
/**
 * The election's timing: 0.25 s heartbeats and a 2 s liveness interval, not
 * the node's 0.1 s / 0.5 s defaults, which let a CPU-starved bearer step down
 * every few seconds (the benchmark would then measure failovers, not
 * scheduling). Overridable with the node's own variables.
 */
const HEARTBEAT = process.env.BATON_HEARTBEAT_FREQUENCY ?? '0.25';
const LIVENESS = process.env.BATON_LIVENESS_CHECK_INTERVAL ?? '2';
const NODES = ['n1', 'n2', 'n3'];
const GROUP = 'bench-schedules';
const handlersModule = fileURLToPath(new URL('./schedules.handlers.ts', import.meta.url));

interface Stats {
  count: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

function stats(xs: readonly number[]): Stats {
  if (xs.length === 0) return { count: 0, p50: NaN, p99: NaN, max: NaN, mean: NaN };
  return {
    count: xs.length,
    p50: round(percentile(xs, 50), 1),
    p99: round(percentile(xs, 99), 1),
    max: round(Math.max(...xs), 1),
    mean: round(xs.reduce((a, b) => a + b, 0) / xs.length, 1),
  };
}

/** PostgreSQL's clock minus the host's, from the round trip with the smallest delay. */
async function clockOffset(pool: pg.Pool): Promise<{ offsetMs: number; rttMs: number }> {
  let best = { offsetMs: 0, rttMs: Infinity };
  for (let i = 0; i < 20; i++) {
    const t0 = Date.now();
    const { rows } = await pool.query<{ ms: string }>(
      'select (extract(epoch from clock_timestamp()) * 1000)::float8::text as ms',
    );
    const t1 = Date.now();
    if (t1 - t0 < best.rttMs)
      best = { offsetMs: Number(rows[0]!.ms) - (t0 + t1) / 2, rttMs: t1 - t0 };
  }
  return { offsetMs: round(best.offsetMs, 1), rttMs: best.rttMs };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function benchSchedules(): Promise<void> {
  const ticksPer = Math.max(1, Math.round((SECONDS * 1000) / INTERVAL_MS));
  console.log(
    `schedules: ${COUNT} interval schedules (${INTERVAL_MS} ms, ${ticksPer} ticks each) on ${NODES.length} node processes for ${SECONDS} s`,
  );
  const db = await benchDatabase('schedules');
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  pool.on('error', () => undefined);
  const store = createStore({ connection: { connectionString: db.url, max: 8 } });
  try {
    await pool.query(
      'create table bench_schedule_runs (task_id bigint not null, node text not null, started_at timestamptz not null)',
    );
    const env = (id: string) => ({
      DATABASE_URL: db.url,
      ...(process.env.NATS_URL ? { NATS_URL: process.env.NATS_URL } : {}),
      BATON_GROUP: GROUP,
      BATON_NODE_ID: id,
      BATON_HANDLERS: handlersModule,
      BATON_HTTP_PORT: '0',
      BATON_HTTP_HOST: '127.0.0.1',
      BATON_LOG_LEVEL: 'warn',
      ...(POLL_MS ? { BATON_POLL_INTERVAL_MS: POLL_MS } : {}),
      BATON_HEARTBEAT_FREQUENCY: HEARTBEAT,
      BATON_LIVENESS_CHECK_INTERVAL: LIVENESS,
    });
    const nodes = await Promise.all(NODES.map((id) => NodeProcess.start(id, env(id))));
    for (;;) {
      const { rows } = await pool.query<{ live: boolean }>(
        'select lease_expires_at > now() as live from baton.token_holder where group_id = $1',
        [GROUP],
      );
      if (rows[0]?.live) break;
      await sleep(100);
    }

    // Schedules, all anchored ahead of their creation: no tick is due before every one exists.
    const schedules = createScheduleStore(store, scheduleCalendar);
    const createMs = Math.max(10_000, COUNT * 15);
    const base = Math.ceil(((await store.now()).getTime() + createMs) / 1000) * 1000;
    const anchors = Array.from(
      { length: COUNT },
      (_, i) => base + Math.floor((i * INTERVAL_MS) / COUNT),
    );
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < COUNT) {
          const i = next++;
          await schedules.create({
            id: `bench-${i}`,
            groupId: GROUP,
            task: { type: 'bench.tick' },
            trigger: {
              kind: 'interval',
              intervalMs: INTERVAL_MS,
              maxCount: ticksPer,
              startTime: new Date(anchors[i]!),
            },
          });
        }
      }),
    );
    const createdIn = performance.now() - t0;
    const createdBeforeFirstDue = (await store.now()).getTime() < base;
    console.log(
      `created ${COUNT} schedules in ${round(createdIn)} ms${createdBeforeFirstDue ? '' : ' (AFTER the first due time: early ticks are late)'}`,
    );

    // Run until every schedule is finished and every tick has run (or a generous deadline).
    const lastDue = Math.max(...anchors) + (ticksPer - 1) * INTERVAL_MS;
    const deadline = lastDue + 60_000;
    const expectedTotal = COUNT * ticksPer;
    let lastLog = 0;
    let progress = { active: COUNT, ticks: 0, runs: 0 };
    for (;;) {
      const { rows } = await pool.query<{ active: number; ticks: number; runs: number }>(
        `select (select count(*)::int from baton.schedules where group_id = $1 and next_due_at is not null) as active,
                (select count(*)::int from baton.schedule_ticks) as ticks,
                (select count(*)::int from bench_schedule_runs) as runs`,
        [GROUP],
      );
      progress = rows[0]!;
      if (progress.active === 0 && progress.runs >= expectedTotal) break;
      if (Date.now() > deadline) {
        console.log('deadline reached before every tick ran');
        break;
      }
      if (Date.now() - lastLog > 5000) {
        console.log(
          `  active schedules ${progress.active}, ticks ${progress.ticks}, runs ${progress.runs}/${expectedTotal}`,
        );
        lastLog = Date.now();
      }
      await sleep(500);
    }
    const clock = await clockOffset(pool);
    const terms = (
      await pool.query<{ n: number }>(
        'select count(*)::int as n from baton.token_grants where group_id = $1',
        [GROUP],
      )
    ).rows[0]!.n;
    await Promise.all(nodes.map(async (n) => (n.signal('SIGTERM'), n.exited)));

    // Lost, extra, doubled.
    const ticks = (
      await pool.query<{ schedule_id: string; due: string; fired: string; task_id: string | null }>(
        `select schedule_id, (extract(epoch from due_at) * 1000)::float8::text as due,
                (extract(epoch from fired_at) * 1000)::float8::text as fired, task_id::text
           from baton.schedule_ticks`,
      )
    ).rows;
    // Each schedule's first grid step: 0, unless it was created after its anchor (a loaded
    // machine): then its grid starts at the first point after its creation (no backlog, as
    // the store documents), taken from its first tick, which must lie within an interval of it.
    const created = new Map(
      (
        await pool.query<{ id: string; created: string }>(
          `select id, (extract(epoch from created_at) * 1000)::float8::text as created
             from baton.schedules where group_id = $1`,
          [GROUP],
        )
      ).rows.map((r) => [r.id, Number(r.created)]),
    );
    const byId = new Map<string, number[]>();
    for (const t of ticks) {
      const list = byId.get(t.schedule_id) ?? [];
      list.push(Number(t.due));
      byId.set(t.schedule_id, list);
    }
    let lost = 0;
    let extra = 0;
    let createdLate = 0;
    for (let i = 0; i < COUNT; i++) {
      const id = `bench-${i}`;
      const anchor = anchors[i]!;
      const dues = (byId.get(id) ?? []).sort((a, b) => a - b);
      const createdAt = created.get(id) ?? anchor;
      let k0 = 0;
      if (createdAt > anchor) {
        createdLate++;
        const first = dues[0] ?? anchor;
        k0 = Math.max(0, Math.round((first - anchor) / INTERVAL_MS));
        if (first < createdAt - INTERVAL_MS || first > createdAt + INTERVAL_MS) lost++;
      }
      const expected = new Set(
        Array.from({ length: ticksPer }, (_, k) => anchor + (k0 + k) * INTERVAL_MS),
      );
      for (const d of dues) if (!expected.has(d)) extra++;
      const got = new Set(dues);
      for (const d of expected) if (!got.has(d)) lost++;
    }
    const q = async (sql: string, params: unknown[] = []) =>
      (await pool.query<{ n: number }>(sql, params)).rows[0]!.n;
    const doubledTasks = await q(
      `select count(*)::int as n from (select idempotency_key from baton.tasks
        where starts_with(idempotency_key, 'schedule:bench-') group by 1 having count(*) > 1) d`,
    );
    const doubledRuns = await q(
      `select count(*)::int as n from (select task_id from bench_schedule_runs group by 1 having count(*) > 1) d`,
    );
    const tasks = await q(
      `select count(*)::int as n from baton.tasks where starts_with(idempotency_key, 'schedule:bench-')`,
    );
    const notRun = await q(
      `select count(*)::int as n from baton.schedule_ticks k
        where k.task_id is null or not exists (select 1 from bench_schedule_runs r where r.task_id = k.task_id)`,
    );
    const finished = await q(
      `select count(*)::int as n from baton.schedules
        where group_id = $1 and next_due_at is null and fired_count = $2`,
      [GROUP, ticksPer],
    );

    // Lateness.
    const late = (
      await pool.query<{
        start_ms: number;
        fire_ms: number;
        claim_ms: number | null;
        node: string;
      }>(
        `select (extract(epoch from r.started_at - k.due_at) * 1000)::float8 as start_ms,
                (extract(epoch from k.fired_at - k.due_at) * 1000)::float8 as fire_ms,
                (extract(epoch from t.started_at - k.due_at) * 1000)::float8 as claim_ms,
                r.node
           from baton.schedule_ticks k
           join bench_schedule_runs r on r.task_id = k.task_id
           join baton.tasks t on t.id = k.task_id`,
      )
    ).rows;
    // started_at is on the host's clock: move it onto PostgreSQL's.
    const start = stats(late.map((r) => r.start_ms + clock.offsetMs));
    const fire = stats(late.map((r) => r.fire_ms));
    const claim = stats(late.filter((r) => r.claim_ms !== null).map((r) => r.claim_ms!));
    const perNode: Record<string, number> = {};
    for (const r of late) perNode[r.node] = (perNode[r.node] ?? 0) + 1;

    const result = {
      bench: 'schedules',
      at: new Date().toISOString(),
      machine: machine(),
      config: {
        schedules: COUNT,
        seconds: SECONDS,
        intervalMs: INTERVAL_MS,
        ticksPerSchedule: ticksPer,
        nodes: NODES.length,
        bus: process.env.NATS_URL ? 'nats' : 'postgres',
        workerPollMs: POLL_MS ? Number(POLL_MS) : 'node default',
        waitingPolicy: 'WAIT',
        firerPeriodMs: 50,
        heartbeatSeconds: Number(HEARTBEAT),
        livenessSeconds: Number(LIVENESS),
      },
      created: { ms: round(createdIn), beforeFirstDue: createdBeforeFirstDue, createdLate },
      ticks: {
        expected: expectedTotal,
        materialised: ticks.length,
        tasks,
        runs: late.length,
        lost,
        extra,
        doubled: doubledTasks + doubledRuns,
        notRun,
        schedulesFinished: finished,
      },
      latenessMs: { handlerStart: start, fire, claim },
      clock,
      termsGranted: terms,
      runsPerNode: perNode,
    };
    const file = writeResults('schedules', result);
    printTable([
      { measure: 'due -> handler start (ms)', ...pick(start) },
      { measure: 'due -> tick fired (ms)', ...pick(fire) },
      { measure: 'due -> task claimed (ms)', ...pick(claim) },
    ]);
    printTable([
      {
        expected: expectedTotal,
        materialised: ticks.length,
        runs: late.length,
        lost,
        doubled: doubledTasks + doubledRuns,
        extra,
        'not run': notRun,
        terms,
      },
    ]);
    console.log(`wrote ${file}`);
    if (lost + extra + doubledTasks + doubledRuns + notRun > 0) process.exitCode = 1;
  } finally {
    await NodeProcess.killAll();
    await store.close();
    await pool.end();
    await db.drop();
  }
}

function pick(s: Stats) {
  return { n: s.count, p50: s.p50, p99: s.p99, max: s.max, mean: s.mean };
}
