/**
 * graphile-worker as a peer. Throughput uses its documented batching
 * settings (the configuration of its performance page: 24 concurrent jobs,
 * a local queue of 500, completion and failure batching); latency uses its
 * defaults, where LISTEN/NOTIFY wakes the worker as soon as `add_job` commits.
 */
import { makeWorkerUtils, type AddJobsJobSpec } from 'graphile-worker';
import pg from 'pg';
import type { GraphileWorkerConfig } from './graphile.worker.js';
import {
  enqueueAndBurnDown,
  oneWorkerLatency,
  type LatencyOptions,
  type PeerRunner,
  type ThroughputOptions,
} from './harness.js';
import { spawnWorkers } from './processes.js';
import { installedVersion } from './versions.js';

const script = new URL('./graphile.worker.ts', import.meta.url);

/** Overrides for tuning: BENCH_GRAPHILE_THROUGHPUT / BENCH_GRAPHILE_LATENCY, JSON worker options. */
const fromEnv = (name: string): GraphileConfig.WorkerOptions =>
  JSON.parse(process.env[name] ?? '{}') as GraphileConfig.WorkerOptions;

export const graphileThroughputOptions: GraphileConfig.WorkerOptions = {
  concurrentJobs: 24,
  maxPoolSize: 25,
  localQueue: { size: 500 },
  completeJobBatchDelay: 0,
  failJobBatchDelay: 0,
  ...fromEnv('BENCH_GRAPHILE_THROUGHPUT'),
};

export const graphileLatencyOptions: GraphileConfig.WorkerOptions = {
  concurrentJobs: 1,
  ...fromEnv('BENCH_GRAPHILE_LATENCY'),
};

/**
 * Migrates graphile-worker's schema; returns its utils and the pool they use
 * (our own: graphile-worker's `release()` does not wait for its pool to end).
 */
async function prepare(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  const utils = await makeWorkerUtils({ pgPool: pool });
  await utils.migrate();
  return {
    utils,
    query: <R extends pg.QueryResultRow>(sql: string, values?: unknown[]) =>
      pool.query<R>(sql, values),
    close: async () => {
      await utils.release();
      await pool.end();
    },
  };
}

export async function throughput(opts: ThroughputOptions) {
  const { url, jobs, processes } = opts;
  const { utils, query, close } = await prepare(url);
  try {
    return await enqueueAndBurnDown({
      jobs,
      spawn: () =>
        spawnWorkers(
          'graphile-worker',
          script,
          processes,
          () =>
            ({
              url,
              mode: 'throughput',
              options: graphileThroughputOptions,
            }) satisfies GraphileWorkerConfig,
        ),
      enqueue: (first, count) =>
        utils.addJobs(
          Array.from({ length: count }, (_, i): AddJobsJobSpec => ({
            identifier: 'noop',
            payload: { i: first + i },
          })),
        ),
      unfinished: async () =>
        (
          await query<{ any: boolean }>(
            'select exists (select 1 from graphile_worker._private_jobs) as any',
          )
        ).rows[0]!.any,
    });
  } finally {
    await close();
  }
}

export async function latency(opts: LatencyOptions) {
  const { url, samples, warmup } = opts;
  const { utils, query, close } = await prepare(url);
  try {
    return await oneWorkerLatency({
      spawn: () =>
        spawnWorkers(
          'graphile-worker',
          script,
          1,
          () =>
            ({
              url,
              mode: 'latency',
              options: graphileLatencyOptions,
            }) satisfies GraphileWorkerConfig,
        ),
      samples,
      warmup,
      submit: async (i) => (await utils.addJob('noop', { i })).id,
      isDone: async (id) =>
        (await query('select 1 from graphile_worker._private_jobs where id = $1::bigint', [id]))
          .rowCount === 0,
    });
  } finally {
    await close();
  }
}

export const graphileWorker: PeerRunner = {
  name: 'graphile-worker',
  version: installedVersion('graphile-worker'),
  settings: { throughput: graphileThroughputOptions, latency: graphileLatencyOptions },
  throughput,
  latency,
};
