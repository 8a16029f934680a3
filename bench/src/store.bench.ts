/**
 * `pnpm bench store`: the store's raw rates on the local PostgreSQL.
 * - enqueue: single tasks (one connection, sequential; and 24 concurrent
 *   submitters) and batches of 1,000;
 * - claim+complete: 24 concurrent claimers draining N tasks, each loop
 *   claiming and starting a batch (1, 50 or 500) in one statement and
 *   completing it in another.
 * Each figure is the median of 3 runs.
 */
import pg from 'pg';
import { createStore, type Store } from '@baton/store';
import { benchDatabase, machine, median, printTable, round, writeResults } from './lib.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CLAIMERS = 24;
const SINGLE_N = Number(process.env.BENCH_SINGLE_N ?? 3000);
const BATCH_N = Number(process.env.BENCH_BATCH_N ?? 50_000);
const DRAIN_N = Number(process.env.BENCH_DRAIN_N ?? 20_000);

async function truncate(store: Store) {
  await store.pool.query('truncate baton.tasks, baton.task_history');
}

async function enqueueSequential(store: Store): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < SINGLE_N; i++) await store.tasks.enqueue({ type: 'bench', payload: { i } });
  return SINGLE_N / ((performance.now() - t0) / 1000);
}

async function enqueueConcurrent(store: Store): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLAIMERS }, async () => {
      while (next < SINGLE_N) {
        const i = next++;
        await store.tasks.enqueue({ type: 'bench', payload: { i } });
      }
    }),
  );
  return SINGLE_N / ((performance.now() - t0) / 1000);
}

async function enqueueBatches(store: Store): Promise<number> {
  const batch = Array.from({ length: 1000 }, (_, i) => ({ type: 'bench', payload: { i } }));
  const t0 = performance.now();
  for (let n = 0; n < BATCH_N; n += 1000) await store.tasks.enqueueMany(batch);
  return BATCH_N / ((performance.now() - t0) / 1000);
}

async function drain(store: Store, batchSize: number): Promise<number> {
  await truncate(store);
  const batch = Array.from({ length: 1000 }, (_, i) => ({ type: 'bench', payload: { i } }));
  for (let n = 0; n < DRAIN_N; n += 1000) await store.tasks.enqueueMany(batch);
  // The plan trap: statistics gathered while every row is pending.
  await store.pool.query('analyze baton.tasks');
  let done = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLAIMERS }, async (_, c) => {
      for (;;) {
        const tasks = await store.tasks.claim({
          owner: `c${c}`,
          limit: batchSize,
          leaseMs: 60_000,
          start: true,
        });
        if (tasks.length === 0) return;
        await store.tasks.completeMany(tasks.map((t) => ({ id: t.id, attempt: t.attempt })));
        done += tasks.length;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  if (done !== DRAIN_N) throw new Error(`drained ${done} of ${DRAIN_N}`);
  return DRAIN_N / seconds;
}

export async function benchStore(): Promise<void> {
  const db = await benchDatabase('store');
  const pool = new pg.Pool({ connectionString: db.url, max: CLAIMERS + 2 });
  pool.on('error', () => {}); // connections closed by the final drop
  const store = createStore({ pool });
  const cases: [string, () => Promise<number>][] = [
    ['enqueue single, sequential', () => enqueueSequential(store)],
    [`enqueue single, ${CLAIMERS} concurrent`, () => enqueueConcurrent(store)],
    ['enqueue batch of 1,000', () => enqueueBatches(store)],
    [`claim+complete batch 1, ${CLAIMERS} claimers`, () => drain(store, 1)],
    [`claim+complete batch 50, ${CLAIMERS} claimers`, () => drain(store, 50)],
    [`claim+complete batch 500, ${CLAIMERS} claimers`, () => drain(store, 500)],
  ];
  const results: { case: string; runs: number[]; median: number }[] = [];
  try {
    for (const [name, run] of cases) {
      const runs: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        if (name.startsWith('enqueue')) await truncate(store);
        runs.push(round(await run()));
      }
      results.push({ case: name, runs, median: round(median(runs)) });
      console.log(`${name}: ${runs.join(', ')} tasks/s`);
    }
  } finally {
    await store.pool.end();
    await db.drop();
  }
  const file = writeResults('store', {
    benchmark: 'store',
    unit: 'tasks/s',
    runs: RUNS,
    postgres: db.server.source,
    sizes: { single: SINGLE_N, batch: BATCH_N, drain: DRAIN_N },
    machine: machine(),
    at: new Date().toISOString(),
    results,
  });
  console.log();
  printTable(
    results.map((r) => ({ case: r.case, 'median tasks/s': r.median, runs: r.runs.join(' / ') })),
  );
  console.log(`\nwritten to ${file}`);
}
