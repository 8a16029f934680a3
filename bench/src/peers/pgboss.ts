/**
 * pg-boss as a peer. pg-boss has no LISTEN/NOTIFY: its workers poll, at
 * least every 0.5 s (its minimum), and complete a batch in one statement.
 * - throughput: per process one worker fetching batches of 500 and fetching
 *   again at once after a full batch (`notifyWorker`). Bigger batches or more
 *   workers are slower here: each fetch sorts every pending job, and the
 *   completion UPDATE is planned as a nested loop (the table's statistics
 *   see no active job), so its cost grows with batch size x active jobs
 *   (4 x 1,000: ~2k/s; 1 x 1,000: ~5k/s; 1 x 500: ~7k/s on 20,000 jobs);
 * - latency `pg-boss`: one worker, batch of 1, polling at the minimum, woken
 *   by a NOTIFY trigger on the job table (the best one can get from pg-boss);
 * - latency `pg-boss (polling)`: the same without the wake-up, i.e. what
 *   pg-boss gives out of the box at its minimum polling interval.
 */
import PgBoss from 'pg-boss';
import pg from 'pg';
import {
  enqueueAndBurnDown,
  oneWorkerLatency,
  settingsFromEnv,
  type LatencyOptions,
  type PeerRunner,
  type ThroughputOptions,
} from './harness.js';
import type { PgBossWorkerConfig } from './pgboss.worker.js';
import { spawnWorkers } from './processes.js';
import { installedVersion } from './versions.js';

const script = new URL('./pgboss.worker.ts', import.meta.url);
const queue = 'noop';
const wakeChannel = 'bench_pgboss_wake';

type Settings = Omit<PgBossWorkerConfig, 'url' | 'mode' | 'queue' | 'wakeChannel'>;

/** Overrides for tuning: BENCH_PGBOSS_THROUGHPUT / BENCH_PGBOSS_LATENCY, JSON settings. */
const fromEnv = (name: string) => settingsFromEnv<Settings>(name);

export const pgbossThroughputSettings: Settings = {
  workers: 1,
  batchSize: 500,
  pollingIntervalSeconds: 0.5,
  max: 10,
  refetchWhenFull: true,
  ...fromEnv('BENCH_PGBOSS_THROUGHPUT'),
};

export const pgbossLatencySettings: Settings = {
  workers: 1,
  batchSize: 1,
  pollingIntervalSeconds: 0.5,
  max: 4,
  refetchWhenFull: false,
  ...fromEnv('BENCH_PGBOSS_LATENCY'),
};

/**
 * Installs pg-boss's schema and creates the queue; returns a started
 * instance on our own pool (ended by `close`, before the database is dropped).
 */
async function prepare(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => {});
  const db = { executeSql: (text: string, values: unknown[]) => pool.query(text, values) };
  const boss = new PgBoss({ db, supervise: false, schedule: false });
  boss.on('error', (e) => console.error(`[pg-boss] ${e.message}`));
  await boss.start();
  await boss.createQueue(queue);
  return {
    boss,
    query: <R extends pg.QueryResultRow>(sql: string, values?: unknown[]) =>
      pool.query<R>(sql, values),
    close: async () => {
      await boss.stop({ graceful: false, wait: true });
      await pool.end();
    },
  };
}

export async function throughput(opts: ThroughputOptions) {
  const { url, jobs, processes } = opts;
  const { boss, query, close } = await prepare(url);
  try {
    const result = await enqueueAndBurnDown({
      jobs,
      spawn: () =>
        spawnWorkers(
          'pg-boss',
          script,
          processes,
          () =>
            ({
              url,
              mode: 'throughput',
              queue,
              ...pgbossThroughputSettings,
            }) satisfies PgBossWorkerConfig,
        ),
      enqueue: (first, count) =>
        boss.insert(
          Array.from({ length: count }, (_, i) => ({ name: queue, data: { i: first + i } })),
        ),
      unfinished: async () =>
        (
          await query<{ any: boolean }>(
            `select exists (select 1 from pgboss.job where name = $1 and state <> 'completed') as any`,
            [queue],
          )
        ).rows[0]!.any,
    });
    // The same interval from pg-boss's own timestamps, as a cross-check.
    const own = await query<{ s: number }>(
      `select extract(epoch from max(completed_on) - min(started_on))::float8 as s
         from pgboss.job where name = $1`,
      [queue],
    );
    const s = own.rows[0]!.s;
    return { ...result, detail: { dbSeconds: s, dbTasksPerSec: Math.round(jobs / s) } };
  } finally {
    await close();
  }
}

async function measureLatency(opts: LatencyOptions, wake: boolean) {
  const { url, samples, warmup } = opts;
  const { boss, query, close } = await prepare(url);
  try {
    if (wake) {
      await query(`
        create function pgboss.bench_wake() returns trigger language plpgsql as $$
        begin perform pg_notify('${wakeChannel}', ''); return null; end $$;
        create trigger bench_wake after insert on pgboss.job
          for each statement execute function pgboss.bench_wake();`);
    }
    return await oneWorkerLatency({
      spawn: () =>
        spawnWorkers(
          'pg-boss',
          script,
          1,
          () =>
            ({
              url,
              mode: 'latency',
              queue,
              ...pgbossLatencySettings,
              ...(wake ? { wakeChannel } : {}),
            }) satisfies PgBossWorkerConfig,
        ),
      samples,
      warmup,
      submit: async (i) => {
        const id = await boss.send(queue, { i });
        if (!id) throw new Error('pg-boss refused the job');
        return id;
      },
      isDone: async (id) =>
        (
          await query(
            `select 1 from pgboss.job where name = $1 and id = $2::uuid and state = 'completed'`,
            [queue, id],
          )
        ).rowCount === 1,
    });
  } finally {
    await close();
  }
}

export const pgBoss: PeerRunner = {
  name: 'pg-boss',
  version: installedVersion('pg-boss'),
  settings: {
    throughput: pgbossThroughputSettings,
    latency: { ...pgbossLatencySettings, wake: 'NOTIFY trigger on insert -> notifyWorker()' },
  },
  throughput,
  latency: (opts) => measureLatency(opts, true),
};

/** pg-boss's latency out of the box: polling at its minimum interval, no wake-up. */
export const pgBossPolling: PeerRunner = {
  name: 'pg-boss (polling)',
  version: installedVersion('pg-boss'),
  settings: { latency: pgbossLatencySettings },
  // Each sample waits for a poll (0.25 s on average): fewer of them.
  latencyCap: { samples: 100, warmup: 5 },
  latency: (opts) => measureLatency(opts, false),
};
