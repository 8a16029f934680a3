/**
 * The common harness of the side-by-side benchmarks: one `PeerRunner` per
 * system (graphile-worker, pg-boss, and Baton when its runtime is ready),
 * measured the same way in the same run.
 *
 * - throughput: `jobs` no-op jobs are enqueued on a fresh database, then
 *   `processes` worker processes are started; tasks/s counts from the first
 *   handler start (reported by the workers) to the moment a poll of the
 *   database sees no unfinished job (every `pollMs`, 20 ms). The poll is an
 *   EXISTS, not a count: a count of a large table every 20 ms would load the
 *   database it measures.
 * - latency: one worker process; one job at a time, from just before the
 *   submit call to the handler start (reported by the worker on the shared
 *   clock), waiting for the job's completion in the database before the next.
 *
 * A runner owns its processes: it may spawn them with `spawnWorkers` and the
 * protocol of `protocol.ts` (as the peers do), or start its own node
 * processes any other way, as long as it reports the same measurements and
 * stops everything it started before returning or throwing.
 */
import { randomBytes } from 'node:crypto';
import { now, sleep, stopAll, type WorkerProcess } from './processes.js';
import { percentile } from '../lib.js';
import { postgresCpuMs, postgresCpuSpentMs, processCpuMs } from './cpu.js';

/** The NATS server the runners that use NATS connect to. */
export const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

/** A short random suffix that keeps one run's names apart from another's. */
export const runSuffix = () => randomBytes(3).toString('hex');

export interface ThroughputOptions {
  /** A fresh, empty database (the harness creates and drops it). */
  readonly url: string;
  readonly jobs: number;
  readonly processes: number;
}

export interface ThroughputResult {
  readonly jobs: number;
  readonly processes: number;
  /** From the first handler start to the last committed completion. */
  readonly seconds: number;
  readonly tasksPerSec: number;
  /** Optional extra figures (e.g. the same interval from the peer's own timestamps). */
  readonly detail?: Readonly<Record<string, number>>;
  /**
   * CPU time per job over the burn-down, from when the first handler start
   * is heard of to its end: of the worker processes, and of the local
   * PostgreSQL server, all its processes. Absent where /proc cannot tell.
   */
  readonly cpu?: { readonly workerUsPerJob?: number; readonly postgresUsPerJob?: number };
}

export interface LatencyOptions {
  readonly url: string;
  readonly samples: number;
  readonly warmup: number;
}

export interface LatencyResult {
  readonly samples: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** One system under benchmark. Either measurement may be absent. */
export interface PeerRunner {
  readonly name: string;
  /** Installed version, for the results file. */
  readonly version: string;
  /**
   * A yardstick (the floor), not a peer: measured and reported in the same
   * run, never compared with as "the better peer".
   */
  readonly yardstick?: boolean;
  /** The settings used, for the results file (what makes this "its best"). */
  readonly settings: Readonly<Record<string, unknown>>;
  /** Upper bounds on latency samples, for a runner whose samples are slow (polling). */
  readonly latencyCap?: { readonly samples: number; readonly warmup: number };
  throughput?(opts: ThroughputOptions): Promise<ThroughputResult>;
  latency?(opts: LatencyOptions): Promise<LatencyResult>;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * Sends `go` to every worker and measures the burn-down: from the earliest
 * `started` message to the first poll where `unfinished()` says none is left.
 */
export async function burnDown(opts: {
  workers: readonly WorkerProcess[];
  jobs: number;
  /** Whether any job is unfinished: a cheap query (EXISTS), polled every `pollMs`. */
  unfinished: () => Promise<boolean>;
  pollMs?: number;
  timeoutMs?: number;
}): Promise<ThroughputResult> {
  const { workers, jobs, unfinished, pollMs = 20, timeoutMs = 180_000 } = opts;
  const starts = workers.map((w) => w.waitFor('started', timeoutMs));
  // A worker that never starts a job (the others took them all) is fine.
  for (const p of starts) p.catch(() => {});
  let firstStart = Infinity;
  for (const p of starts) void p.then((m) => (firstStart = Math.min(firstStart, m.at)));
  // CPU is read when the first handler start is heard of: the window of tasks/s.
  const cpuBefore = Promise.any(starts).then(() => cpuNow(workers));
  cpuBefore.catch(() => {});
  for (const w of workers) w.send({ type: 'go' });
  const deadline = now() + timeoutMs;
  let end: number;
  for (;;) {
    await sleep(pollMs);
    if (!(await unfinished())) {
      end = now();
      break;
    }
    if (now() > deadline) throw new Error(`burn-down of ${jobs} jobs timed out with jobs left`);
  }
  const cpuAfter = cpuNow(workers);
  // The `started` messages may trail the last completion by an IPC hop.
  await Promise.race([Promise.any(starts).catch(() => {}), sleep(1000)]);
  if (!Number.isFinite(firstStart)) throw new Error('no worker reported a handler start');
  const cpu = cpuPerJob(await cpuBefore, cpuAfter, jobs);
  const seconds = (end - firstStart) / 1000;
  return {
    jobs,
    processes: workers.length,
    seconds: round3(seconds),
    tasksPerSec: Math.round(jobs / seconds),
    ...(cpu ? { cpu } : {}),
  };
}

interface CpuReading {
  readonly workers: number | undefined;
  readonly postgres: ReadonlyMap<string, number> | undefined;
}

function cpuNow(workers: readonly WorkerProcess[]): CpuReading {
  let total: number | undefined = 0;
  for (const w of workers) {
    const ms = processCpuMs(w.pid);
    total = ms === undefined || total === undefined ? undefined : total + ms;
  }
  return { workers: total, postgres: postgresCpuMs() };
}

function cpuPerJob(a: CpuReading, b: CpuReading, jobs: number): ThroughputResult['cpu'] {
  // A first start heard of after the end (a tiny burn-down) leaves no window to read.
  const per = (x: number | undefined, y: number | undefined) =>
    x === undefined || y === undefined || y < x
      ? undefined
      : Math.round((((y - x) * 1000) / jobs) * 10) / 10;
  const workerUsPerJob = per(a.workers, b.workers);
  // Per process: other sessions ending in the window must not count against it.
  const postgresUsPerJob =
    a.postgres && b.postgres && workerUsPerJob !== undefined
      ? per(0, postgresCpuSpentMs(a.postgres, b.postgres))
      : undefined;
  if (workerUsPerJob === undefined && postgresUsPerJob === undefined) return undefined;
  return {
    ...(workerUsPerJob !== undefined ? { workerUsPerJob } : {}),
    ...(postgresUsPerJob !== undefined ? { postgresUsPerJob } : {}),
  };
}

/** Jobs per enqueue call while a burn-down is prepared. */
const ENQUEUE_CHUNK = 2000;

/**
 * The throughput run every runner shares: the workers start while the jobs
 * are enqueued (`enqueue(first, count)`, in chunks), then `ready()` (e.g. an
 * ANALYZE), then the burn-down; the workers are stopped whatever happens.
 */
export async function enqueueAndBurnDown(opts: {
  jobs: number;
  spawn: () => Promise<WorkerProcess[]>;
  enqueue: (first: number, count: number) => Promise<unknown>;
  ready?: () => Promise<unknown>;
  unfinished: () => Promise<boolean>;
}): Promise<ThroughputResult> {
  const spawning = opts.spawn();
  spawning.catch(() => {});
  try {
    for (let n = 0; n < opts.jobs; n += ENQUEUE_CHUNK) {
      await opts.enqueue(n, Math.min(ENQUEUE_CHUNK, opts.jobs - n));
    }
    await opts.ready?.();
    return await burnDown({
      workers: await spawning,
      jobs: opts.jobs,
      unfinished: opts.unfinished,
    });
  } finally {
    await stopAll(await spawning.catch(() => []));
  }
}

/**
 * The latency run every runner shares: one worker process is started, told
 * to `go`, and measured with {@link sequentialLatency} once it reports
 * `running`; it is stopped whatever happens.
 */
export async function oneWorkerLatency(opts: {
  spawn: () => Promise<WorkerProcess[]>;
  samples: number;
  warmup: number;
  submit: (i: number) => Promise<string>;
  isDone: (id: string) => Promise<boolean>;
}): Promise<LatencyResult> {
  const spawning = opts.spawn();
  spawning.catch(() => {});
  try {
    const worker = (await spawning)[0]!;
    worker.send({ type: 'go' });
    await worker.waitFor('running', 30_000);
    return await sequentialLatency({ ...opts, worker });
  } finally {
    await stopAll(await spawning.catch(() => []));
  }
}

/** A runner's settings overridden by the JSON in environment variable `name` (for tuning). */
export function settingsFromEnv<T>(name: string): Partial<T> {
  return JSON.parse(process.env[name] ?? '{}') as Partial<T>;
}

/**
 * Sequential submit -> handler start latency against one running worker
 * (already sent `go` and `running`). `submit` returns the job id the worker
 * will report; `isDone` tells whether that job's completion is committed.
 */
export async function sequentialLatency(opts: {
  worker: WorkerProcess;
  samples: number;
  warmup: number;
  submit: (i: number) => Promise<string>;
  isDone: (id: string) => Promise<boolean>;
  timeoutMs?: number;
}): Promise<LatencyResult> {
  const { worker, samples, warmup, submit, isDone, timeoutMs = 10_000 } = opts;
  const latencies: number[] = [];
  // The handler may start before `submit` returns: keep every report.
  const seen = new Map<string, number>();
  const off = worker.onMessage((m) => {
    if (m.type === 'job') seen.set(m.id, m.at);
  });
  try {
    for (let i = 0; i < warmup + samples; i++) {
      const t0 = now();
      const id = await submit(i);
      const at = seen.get(id) ?? (await worker.waitFor('job', timeoutMs, (m) => m.id === id)).at;
      seen.clear();
      if (i >= warmup) latencies.push(at - t0);
      const deadline = now() + timeoutMs;
      while (!(await isDone(id))) {
        if (now() > deadline) throw new Error(`job ${id} not completed within ${timeoutMs} ms`);
        await sleep(1);
      }
    }
  } finally {
    off();
  }
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    samples: latencies.length,
    p50: r2(percentile(latencies, 50)),
    p95: r2(percentile(latencies, 95)),
    p99: r2(percentile(latencies, 99)),
    max: r2(Math.max(...latencies)),
    mean: r2(latencies.reduce((a, b) => a + b, 0) / latencies.length),
  };
}
