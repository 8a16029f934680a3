/**
 * The short version of `pnpm bench throughput` / `pnpm bench latency` inside
 * `pnpm test`: the same runners, real node and worker processes, a few
 * thousand jobs. It checks that the benchmarks run and count what they say;
 * it asserts no speed (timing belongs to the benches, on a quiet machine).
 */
import pg from 'pg';
import { useTestDatabase } from '@baton/testkit';
import { afterAll, expect, it } from 'vitest';
import { batonPgBus } from '../src/peers/baton.js';
import { graphileWorker } from '../src/peers/graphile.js';
import { floor } from '../src/peers/floor.js';
import { compare, type PeerReport } from '../src/peers.bench.js';
import { measureMemory, slope } from '../src/memory.bench.js';

const db = useTestDatabase();
const pool = new pg.Pool({ connectionString: db.url, max: 2 });
afterAll(() => pool.end());

it('throughput: Baton (PostgreSQL bus) and graphile-worker burn down 2,000 jobs each, every one finished', async () => {
  const baton = await batonPgBus.throughput!({ url: db.url, jobs: 2000, processes: 1 });
  expect(baton).toMatchObject({ jobs: 2000, processes: 1 });
  expect(baton.seconds).toBeGreaterThan(0);
  // tasks/s is jobs over the burn-down time (seconds is rounded to ms).
  expect(Math.abs(baton.tasksPerSec - 2000 / baton.seconds)).toBeLessThan(baton.tasksPerSec / 100);
  const { rows } = await pool.query<{ status: string; n: number }>(
    `select status::text, count(*)::int as n from baton.tasks where type = 'noop' group by 1`,
  );
  expect(rows).toEqual([{ status: 'completed', n: 2000 }]);
  // CPU per job from /proc: the node process's, and the local PostgreSQL server's.
  if (process.platform === 'linux') {
    expect(baton.cpu?.workerUsPerJob).toBeGreaterThan(0);
    // Read (a number, never dropped); it may be 0: 2,000 jobs can cost each
    // PostgreSQL session less than one 10 ms tick of /proc's counters.
    expect(baton.cpu?.postgresUsPerJob).toBeGreaterThanOrEqual(0);
  } else {
    expect(baton.cpu).toBeUndefined();
  }

  const graphile = await graphileWorker.throughput!({ url: db.url, jobs: 2000, processes: 1 });
  expect(graphile).toMatchObject({ jobs: 2000, processes: 1 });
  const left = await pool.query<{ n: number }>(
    'select count(*)::int as n from graphile_worker._private_jobs',
  );
  expect(left.rows[0]!.n).toBe(0);
}, 120_000);

it('latency: Baton (PostgreSQL bus) measures submit -> handler start over sequential samples', async () => {
  const result = await batonPgBus.latency!({ url: db.url, samples: 40, warmup: 5 });
  expect(result.samples).toBe(40);
  expect(result.p50).toBeGreaterThan(0);
  expect(result.p50).toBeLessThanOrEqual(result.p95);
  expect(result.p95).toBeLessThanOrEqual(result.p99);
  expect(result.p99).toBeLessThanOrEqual(result.max);
}, 120_000);

it('the floor yardstick burns down 2,000 jobs and answers NATS submissions after its insert', async () => {
  const burn = await floor.throughput!({ url: db.url, jobs: 2000, processes: 1 });
  expect(burn).toMatchObject({ jobs: 2000, processes: 1 });
  const { rows } = await pool.query<{ status: string; n: number }>(
    'select status, count(*)::int as n from floor_jobs group by 1',
  );
  expect(rows).toEqual([{ status: 'completed', n: 2000 }]);
  const latency = await floor.latency!({ url: db.url, samples: 40, warmup: 5 });
  expect(latency.samples).toBe(40);
  expect(latency.p50).toBeGreaterThan(0);
}, 120_000);

it('memory: a node runs rounds of submitted and enqueued tasks and reports its live heap after each', async () => {
  const result = await measureMemory({
    url: db.url,
    nats: undefined,
    rounds: 4,
    tasksPerRound: 300,
  });
  expect(result.rounds.map((r) => r.tasks)).toEqual([300, 600, 900, 1200]);
  for (const r of result.rounds) {
    expect(r.heapMb).toBeGreaterThan(1);
    expect(r.rssMb).toBeGreaterThanOrEqual(r.heapMb);
  }
  expect(Number.isFinite(result.bytesPerTask)).toBe(true);
  const { rows } = await pool.query<{ n: number }>(
    `select count(*)::int as n from baton.tasks where status = 'completed' and payload ? 'r'`,
  );
  expect(rows[0]!.n).toBe(1200);
}, 120_000);

it('memory: the growth figure is the least-squares slope', () => {
  expect(slope([1, 2, 3, 4], [10, 12, 14, 16])).toBe(2);
  expect(slope([0, 10, 20], [5, 5, 5])).toBe(0);
  expect(slope([1], [3])).toBe(0);
});

it('compares Baton with the better peer, never with the floor yardstick', () => {
  const report = (name: string, tasksPerSec: number, p50: number, yardstick = false) =>
    ({
      name,
      version: '-',
      ...(yardstick ? { yardstick: true } : {}),
      settings: {},
      throughput: {
        '1': {
          runs: [{ jobs: 1, processes: 1, seconds: 1, tasksPerSec }],
          medianTasksPerSec: tasksPerSec,
        },
      },
      latency: {
        runs: [{ samples: 1, p50, p95: p50, p99: p50, max: p50, mean: p50 }],
        median: { samples: 1, p50, p95: p50, p99: p50, max: p50, mean: p50 },
      },
    }) satisfies PeerReport;
  const rows = compare([
    report('baton', 150, 1),
    report('slow peer', 50, 4),
    report('fast peer', 100, 2),
    report('floor', 1000, 0.5, true),
  ]);
  expect(rows.map((r) => [r.figure, r.peer, r.ratioOfMedians])).toEqual([
    ['throughput, 1 process(es)', 'fast peer', 1.5],
    ['latency p50', 'fast peer', 2],
    ['latency p99', 'fast peer', 2],
  ]);
});
