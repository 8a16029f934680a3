/**
 * `pnpm bench memory`: whether a node's heap stays flat while it works.
 *
 * One node (in this process) runs rounds of no-op tasks: half submitted as
 * request/reply over the bus by 20 concurrent submitters (direct starts),
 * half enqueued in batches of 500 by a client and claimed. After each round,
 * two full collections, then the live heap is read. The figure is the growth
 * per task: the least-squares slope of the live heap over the rounds after
 * the first two (warm-up), in bytes per task. A node that keeps something per
 * task (a leak) shows tens of bytes and more; a flat heap shows about 0.
 *
 * Environment: BENCH_MEMORY_ROUNDS (12), BENCH_MEMORY_TASKS (tasks per round,
 * 5000), NATS_URL (the NATS bus; without it, PostgreSQL LISTEN/NOTIFY).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  connectClient,
  createNode,
  encodeAs,
  type BatonNode,
  type ConnectedClient,
} from '@baton/runtime';
import { benchDatabase, machine, printTable, round, writeResults } from './lib.js';

export interface MemoryOptions {
  readonly url: string;
  readonly nats: string | undefined;
  readonly rounds: number;
  readonly tasksPerRound: number;
}

export interface MemoryRound {
  readonly tasks: number;
  readonly heapMb: number;
  readonly rssMb: number;
}

export interface MemoryResult {
  readonly rounds: readonly MemoryRound[];
  /** Live heap growth per task over the rounds after the warm-up, in bytes. */
  readonly bytesPerTask: number;
}

const WARMUP_ROUNDS = 2;
const SUBMITTERS = 20;
const BATCH = 500;

/** A full collection, reachable without starting node with --expose-gc. */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** The least-squares slope of y over x. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** Runs the rounds against a fresh group on `url`; the caller owns the database. */
export async function measureMemory(opts: MemoryOptions): Promise<MemoryResult> {
  const gc = collector();
  const groupId = `mem-${process.pid}-${Date.now().toString(36)}`;
  const nats = opts.nats ? { servers: opts.nats } : undefined;
  let done = 0;
  let waiter: { target: number; resolve: () => void } | undefined;
  const node: BatonNode = createNode({
    groupId,
    database: { url: opts.url },
    ...(nats && { nats }),
    worker: { concurrency: 500 },
    http: false,
    logLevel: 'warn',
  });
  node.handle('noop', () => {
    done++;
    if (waiter && done >= waiter.target) waiter.resolve();
  });
  let client: ConnectedClient | undefined;
  try {
    await node.start();
    client = await connectClient({ database: { url: opts.url }, groupId, ...(nats && { nats }) });
    const { bus } = client;
    const subject = `baton.${groupId}.submit.noop`;
    const decoder = new TextDecoder();
    const rounds: MemoryRound[] = [];
    let submitted = 0;
    for (let r = 0; r < opts.rounds; r++) {
      const half = Math.floor(opts.tasksPerRound / 2);
      const target = done + opts.tasksPerRound;
      const finished = new Promise<void>((resolve) => (waiter = { target, resolve }));
      let next = 0;
      const submit = async () => {
        while (next < half) {
          next++;
          const reply = await bus.request(subject, encodeAs('json', { payload: { r } }), {
            timeoutMs: 10_000,
          });
          const body = JSON.parse(decoder.decode(reply)) as { ok: boolean };
          if (!body.ok) throw new Error(`submission refused: ${JSON.stringify(body)}`);
        }
      };
      const enqueue = async () => {
        for (let n = 0; n < opts.tasksPerRound - half; n += BATCH) {
          const count = Math.min(BATCH, opts.tasksPerRound - half - n);
          await client!.enqueueMany(
            Array.from({ length: count }, () => ({ type: 'noop', payload: { r } })),
          );
        }
      };
      await Promise.all([...Array.from({ length: SUBMITTERS }, submit), enqueue()]);
      await withTimeout(finished, 60_000, `round ${r + 1}: tasks left unfinished`);
      submitted += opts.tasksPerRound;
      gc();
      gc();
      const { heapUsed, rss } = process.memoryUsage();
      rounds.push({
        tasks: submitted,
        heapMb: round(heapUsed / 1e6, 2),
        rssMb: round(rss / 1e6, 1),
      });
    }
    const measured = rounds.slice(WARMUP_ROUNDS);
    const bytesPerTask = slope(
      measured.map((m) => m.tasks),
      measured.map((m) => m.heapMb * 1e6),
    );
    return { rounds, bytesPerTask: round(bytesPerTask, 1) };
  } finally {
    await client?.close();
    await node.shutdown(5000);
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function benchMemory(): Promise<void> {
  const rounds = Number(process.env.BENCH_MEMORY_ROUNDS ?? 12);
  const tasksPerRound = Number(process.env.BENCH_MEMORY_TASKS ?? 5000);
  if (rounds <= WARMUP_ROUNDS + 1) {
    throw new Error(`BENCH_MEMORY_ROUNDS must be more than ${WARMUP_ROUNDS + 1}`);
  }
  const nats = process.env.NATS_URL;
  const db = await benchDatabase('memory');
  const started = Date.now();
  try {
    const result = await measureMemory({ url: db.url, nats, rounds, tasksPerRound });
    printTable(result.rounds.map((r) => ({ ...r })));
    console.log(
      `\nlive heap growth after ${WARMUP_ROUNDS} warm-up rounds: ${result.bytesPerTask} bytes per task`,
    );
    const file = writeResults('memory', {
      benchmark: 'memory',
      bus: nats ? 'nats' : 'postgres',
      tasksPerRound,
      warmupRounds: WARMUP_ROUNDS,
      method:
        'one node in the bench process; per round half the tasks are bus request/reply submissions (20 submitters), half client enqueues in batches of 500; live heap after two full collections; growth = least-squares slope over the rounds after the warm-up',
      machine: machine(),
      at: new Date().toISOString(),
      elapsedSeconds: Math.round((Date.now() - started) / 1000),
      ...result,
    });
    console.log(`written to ${file}`);
  } finally {
    await db.drop();
  }
}
