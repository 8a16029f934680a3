/**
 * Baton as a runner of the side-by-side benchmarks, measured exactly like
 * the peers: real node processes (createNode, as services/node composes it)
 * driven over the harness's IPC protocol.
 *
 * - throughput: the tasks are enqueued in bulk (enqueueMany) on a fresh
 *   database, then N node processes start; from the first handler start to
 *   the first poll that sees no unfinished task;
 * - latency: one node; each sample is submitted the way users do, a NATS (or
 *   PostgreSQL-bus) request on `baton.<group>.submit.noop` whose reply comes
 *   after the commit; the node process reports the handler start.
 *
 * Two runners: `baton` on NATS (NATS_URL, default nats://127.0.0.1:4222) and
 * `baton (pg bus)` on PostgreSQL LISTEN/NOTIFY.
 */
import type pg from 'pg';
import { createNatsBus, createPostgresBus, encodeAs, VERSION, type Bus } from '@baton/runtime';
import { createStore } from '@baton/store';
import type { BatonWorkerConfig } from './baton.worker.js';
import {
  enqueueAndBurnDown,
  natsUrl,
  oneWorkerLatency,
  runSuffix,
  settingsFromEnv,
  type LatencyOptions,
  type PeerRunner,
  type ThroughputOptions,
} from './harness.js';
import { spawnWorkers } from './processes.js';

const script = new URL('./baton.worker.ts', import.meta.url);

type Settings = Pick<BatonWorkerConfig, 'concurrency' | 'poolSize' | 'completionFlushMs'>;

/** Overrides for tuning: BENCH_BATON_THROUGHPUT / BENCH_BATON_LATENCY, JSON settings. */
const fromEnv = (name: string) => settingsFromEnv<Settings>(name);

/**
 * Throughput: 500 handlers at once per node (no-op handlers; graphile-worker
 * gets its local queue of 500), otherwise the node's defaults. Latency: the
 * node's defaults (worker.concurrency 32, poolSize 10, completionFlushMs 2).
 */
export const batonThroughputSettings: Settings = {
  concurrency: 500,
  poolSize: 10,
  completionFlushMs: 2,
  ...fromEnv('BENCH_BATON_THROUGHPUT'),
};

export const batonLatencySettings: Settings = {
  concurrency: 32,
  poolSize: 10,
  completionFlushMs: 2,
  ...fromEnv('BENCH_BATON_LATENCY'),
};

/** Migrates Baton's schema on the fresh database; returns a store and a closer. */
async function prepare(url: string) {
  const store = createStore({ connection: { connectionString: url, max: 2 } });
  store.pool.on('error', () => {});
  await store.migrate();
  return {
    store,
    query: <R extends pg.QueryResultRow>(sql: string, values?: unknown[]) =>
      store.pool.query<R>(sql, values),
    close: () => store.close(),
  };
}

function workerConfigs(
  url: string,
  bus: 'nats' | 'postgres',
  mode: 'throughput' | 'latency',
  settings: Settings,
) {
  const groupId = `bench-${runSuffix()}`;
  return {
    groupId,
    config: (i: number): BatonWorkerConfig => ({
      url,
      nats: bus === 'nats' ? natsUrl : null,
      mode,
      groupId,
      nodeId: `bench-${i}-${runSuffix()}`,
      ...settings,
    }),
  };
}

function throughput(bus: 'nats' | 'postgres') {
  return async (opts: ThroughputOptions) => {
    const { url, jobs, processes } = opts;
    const { store, query, close } = await prepare(url);
    try {
      const { config } = workerConfigs(url, bus, 'throughput', batonThroughputSettings);
      return await enqueueAndBurnDown({
        jobs,
        spawn: () => spawnWorkers('baton', script, processes, config),
        enqueue: (first, count) =>
          store.tasks.enqueueMany(
            Array.from({ length: count }, (_, i) => ({ type: 'noop', payload: { i: first + i } })),
          ),
        ready: () => query('analyze baton.tasks'),
        unfinished: async () =>
          (
            await query<{ any: boolean }>(
              `select exists (select 1 from baton.tasks
                where status in ('pending', 'retry', 'claimed', 'running')) as any`,
            )
          ).rows[0]!.any,
      });
    } finally {
      await close();
    }
  };
}

async function openClientBus(kind: 'nats' | 'postgres', url: string): Promise<Bus> {
  if (kind === 'nats') return createNatsBus({ servers: natsUrl, name: 'baton-bench-submitter' });
  return createPostgresBus({ connectionString: url, poolSize: 2 });
}

function latency(bus: 'nats' | 'postgres') {
  return async (opts: LatencyOptions) => {
    const { url, samples, warmup } = opts;
    const { query, close } = await prepare(url);
    let client: Bus | undefined;
    try {
      const { groupId, config } = workerConfigs(url, bus, 'latency', batonLatencySettings);
      client = await openClientBus(bus, url);
      const submitter = client;
      const subject = `baton.${groupId}.submit.noop`;
      const decoder = new TextDecoder();
      return await oneWorkerLatency({
        spawn: () => spawnWorkers('baton', script, 1, config),
        samples,
        warmup,
        submit: async (i) => {
          const reply = await submitter.request(subject, encodeAs('json', { payload: { i } }), {
            timeoutMs: 5000,
          });
          const body = JSON.parse(decoder.decode(reply)) as
            { ok: true; id: string } | { ok: false; error: { message: string } };
          if (!body.ok) throw new Error(`submission refused: ${body.error.message}`);
          return body.id;
        },
        isDone: async (id) =>
          (await query<{ status: string }>('select status from baton.tasks where id = $1', [id]))
            .rows[0]?.status === 'completed',
      });
    } finally {
      await client?.close().catch(() => {});
      await close();
    }
  };
}

const version = VERSION;

export const baton: PeerRunner = {
  name: 'baton',
  version,
  settings: {
    bus: `nats (${natsUrl})`,
    throughput: batonThroughputSettings,
    latency: batonLatencySettings,
  },
  throughput: throughput('nats'),
  latency: latency('nats'),
};

export const batonPgBus: PeerRunner = {
  name: 'baton (pg bus)',
  version,
  settings: {
    bus: 'postgres LISTEN/NOTIFY',
    throughput: batonThroughputSettings,
    latency: batonLatencySettings,
  },
  throughput: throughput('postgres'),
  latency: latency('postgres'),
};
