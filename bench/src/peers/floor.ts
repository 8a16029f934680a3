/**
 * The floor: a yardstick, not a peer. It measures, in the same run as the
 * others, what the bare minimum costs on this machine, so Baton's figures can
 * be read against it: a bare SQL loop (claim 50 with SKIP LOCKED, complete
 * them with one UPDATE; the brief's yardstick) for throughput, and a NATS
 * request answered after one INSERT for latency. No retries, leases, events,
 * metrics or actors. It is never "the better peer" in the comparisons.
 */
import pg from 'pg';
import { connect } from '@nats-io/transport-node';
import type { FloorWorkerConfig } from './floor.worker.js';
import {
  enqueueAndBurnDown,
  natsUrl,
  oneWorkerLatency,
  runSuffix,
  type LatencyOptions,
  type PeerRunner,
  type ThroughputOptions,
} from './harness.js';
import { spawnWorkers } from './processes.js';

const script = new URL('./floor.worker.ts', import.meta.url);
/** Claim-complete loops per process: BENCH_FLOOR_LOOPS (8). */
const loops = Number(process.env.BENCH_FLOOR_LOOPS ?? 8);

const SCHEMA = `
  drop table if exists floor_jobs;
  create table floor_jobs (
    id bigint generated always as identity primary key,
    payload jsonb not null,
    status text not null default 'pending',
    attempt int not null default 0,
    locked_by text,
    locked_at timestamptz
  );
  create index floor_jobs_pending_idx on floor_jobs (id) where status = 'pending'`;

async function prepare(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => {});
  await pool.query(SCHEMA);
  return pool;
}

function configs(url: string, mode: FloorWorkerConfig['mode']) {
  const suffix = runSuffix();
  const subject = `floor.${suffix}.submit`;
  return {
    subject,
    config: (i: number): FloorWorkerConfig => ({
      url,
      nats: natsUrl,
      subject,
      mode,
      nodeId: `floor-${i}-${suffix}`,
      loops,
    }),
  };
}

async function throughput({ url, jobs, processes }: ThroughputOptions) {
  const pool = await prepare(url);
  try {
    const { config } = configs(url, 'throughput');
    return await enqueueAndBurnDown({
      jobs,
      spawn: () => spawnWorkers('floor', script, processes, config),
      enqueue: (first, count) =>
        pool.query(
          `insert into floor_jobs (payload) select jsonb_build_object('i', i)
             from generate_series($1::int, $2::int) as i`,
          [first, first + count - 1],
        ),
      ready: () => pool.query('analyze floor_jobs'),
      unfinished: async () =>
        (
          await pool.query<{ any: boolean }>(
            `select exists (select 1 from floor_jobs where status <> 'completed') as any`,
          )
        ).rows[0]!.any,
    });
  } finally {
    await pool.end();
  }
}

async function latency({ url, samples, warmup }: LatencyOptions) {
  const pool = await prepare(url);
  const nc = await connect({ servers: natsUrl, name: 'floor-bench-submitter' });
  try {
    const { subject, config } = configs(url, 'latency');
    return await oneWorkerLatency({
      spawn: () => spawnWorkers('floor', script, 1, config),
      samples,
      warmup,
      submit: async (i) => {
        const reply = await nc.request(subject, JSON.stringify({ payload: { i } }), {
          timeout: 5000,
        });
        return (JSON.parse(reply.string()) as { id: string }).id;
      },
      isDone: async (id) =>
        (await pool.query<{ status: string }>('select status from floor_jobs where id = $1', [id]))
          .rows[0]?.status === 'completed',
    });
  } finally {
    await nc.close();
    await pool.end();
  }
}

export const floor: PeerRunner = {
  name: 'floor',
  version: '-',
  yardstick: true,
  settings: {
    throughput: `${loops} loops per process, a connection each: claim 50 (SKIP LOCKED, marked running), one UPDATE to complete`,
    latency: `NATS request (${natsUrl}) answered after one INSERT of the task, running`,
  },
  throughput,
  latency,
};
