/**
 * `pnpm bench peers`: throughput (burn-down of BENCH_JOBS no-op jobs by 1
 * and 2 worker processes) and latency (BENCH_SAMPLES sequential samples
 * after BENCH_WARMUP, submit -> handler start) of every peer runner, side by
 * side in one run: each run measures every runner in turn on a fresh
 * database, BENCH_RUNS times; the figures are the medians.
 *
 * Environment: BENCH_RUNS (3), BENCH_JOBS (20000), BENCH_SAMPLES (1000),
 * BENCH_WARMUP (100), BENCH_PROCESSES ("1,2"), BENCH_PEERS (names, comma
 * separated; all by default), BENCH_PEERS_ONLY ("throughput" or "latency").
 */
import { benchDatabase, machine, median, printTable, round, writeResults } from './lib.js';
import { graphileWorker } from './peers/graphile.js';
import type { LatencyResult, PeerRunner, ThroughputResult } from './peers/harness.js';
import { baton, batonPgBus } from './peers/baton.js';
import { pgBoss, pgBossPolling } from './peers/pgboss.js';
import { floor } from './peers/floor.js';
import { liveWorkers } from './peers/processes.js';

/** The runners, in the order they are measured. */
export const peerRunners: readonly PeerRunner[] = [
  baton,
  graphileWorker,
  pgBoss,
  batonPgBus,
  pgBossPolling,
  floor,
];

/** Baton's runners: compared with the better of the other runners of the same run. */
const isBaton = (r: { name: string }) => r.name.startsWith('baton');

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const JOBS = Number(process.env.BENCH_JOBS ?? 20_000);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 1000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 100);
const PROCESSES = (process.env.BENCH_PROCESSES ?? '1,2').split(',').map(Number);
const ONLY = process.env.BENCH_PEERS_ONLY;

export interface PeerReport {
  name: string;
  yardstick?: boolean;
  version: string;
  settings: Readonly<Record<string, unknown>>;
  throughput: Record<
    string,
    {
      runs: ThroughputResult[];
      medianTasksPerSec: number;
      /** Medians of the runs' CPU per job (see ThroughputResult.cpu). */
      medianCpu?: { workerUsPerJob?: number; postgresUsPerJob?: number };
    }
  >;
  latency?: { runs: LatencyResult[]; median: Omit<LatencyResult, 'samples'> & { samples: number } };
}

/** The median of each CPU figure over the runs that have it. */
function medianCpu(
  runs: readonly ThroughputResult[],
): PeerReport['throughput'][string]['medianCpu'] {
  const of = (k: 'workerUsPerJob' | 'postgresUsPerJob') => {
    const xs = runs.flatMap((r) => (r.cpu?.[k] === undefined ? [] : [r.cpu[k]]));
    return xs.length > 0 ? round(median(xs), 1) : undefined;
  };
  const workerUsPerJob = of('workerUsPerJob');
  const postgresUsPerJob = of('postgresUsPerJob');
  if (workerUsPerJob === undefined && postgresUsPerJob === undefined) return undefined;
  return {
    ...(workerUsPerJob !== undefined ? { workerUsPerJob } : {}),
    ...(postgresUsPerJob !== undefined ? { postgresUsPerJob } : {}),
  };
}

async function onFreshDatabase<T>(run: (url: string) => Promise<T>): Promise<T> {
  const db = await benchDatabase('peers', { migrate: false });
  try {
    return await run(db.url);
  } finally {
    await db.drop();
  }
}

function selected(defaults: readonly PeerRunner[]): PeerRunner[] {
  const names = process.env.BENCH_PEERS?.split(',').map((s) => s.trim());
  const runners = names ? peerRunners.filter((r) => names.includes(r.name)) : [...defaults];
  if (runners.length === 0)
    throw new Error(`BENCH_PEERS matches none of: ${peerRunners.map((r) => r.name).join(', ')}`);
  return runners;
}

/** `pnpm bench peers`: every runner, throughput and latency (BENCH_PEERS_ONLY narrows it). */
export function benchPeers(): Promise<void> {
  return sideBySide('peers', peerRunners, ONLY);
}

/** `pnpm bench throughput`: Baton (NATS and PostgreSQL bus), graphile-worker, pg-boss. */
export function benchThroughput(): Promise<void> {
  return sideBySide('throughput', [baton, graphileWorker, pgBoss, batonPgBus, floor], 'throughput');
}

/** `pnpm bench latency`: the same runners (pg-boss woken by NOTIFY: its best latency). */
export function benchLatency(): Promise<void> {
  return sideBySide('latency', [baton, graphileWorker, pgBoss, batonPgBus, floor], 'latency');
}

async function sideBySide(
  name: string,
  defaults: readonly PeerRunner[],
  only: string | undefined,
): Promise<void> {
  const runners = selected(defaults);
  const reports = new Map<PeerRunner, PeerReport>(
    runners.map((r) => [
      r,
      {
        name: r.name,
        version: r.version,
        ...(r.yardstick ? { yardstick: true } : {}),
        settings: r.settings,
        throughput: {},
      },
    ]),
  );
  const latencyRuns = new Map<PeerRunner, LatencyResult[]>();
  const t0 = performance.now();
  for (let run = 1; run <= RUNS; run++) {
    if (only !== 'latency') {
      for (const processes of PROCESSES) {
        for (const runner of runners) {
          if (!runner.throughput) continue;
          const result = await onFreshDatabase((url) =>
            runner.throughput!({ url, jobs: JOBS, processes }),
          );
          const slot = (reports.get(runner)!.throughput[String(processes)] ??= {
            runs: [],
            medianTasksPerSec: 0,
          });
          slot.runs.push(result);
          console.log(
            `run ${run} ${runner.name} throughput, ${processes} process(es): ${result.tasksPerSec} tasks/s (${result.seconds} s)`,
          );
        }
      }
    }
    if (only !== 'throughput') {
      for (const runner of runners) {
        if (!runner.latency) continue;
        const samples = Math.min(SAMPLES, runner.latencyCap?.samples ?? Infinity);
        const warmup = Math.min(WARMUP, runner.latencyCap?.warmup ?? Infinity);
        const result = await onFreshDatabase((url) => runner.latency!({ url, samples, warmup }));
        const runs = latencyRuns.get(runner) ?? [];
        runs.push(result);
        latencyRuns.set(runner, runs);
        console.log(
          `run ${run} ${runner.name} latency (${result.samples} samples): p50 ${result.p50} p95 ${result.p95} p99 ${result.p99} max ${result.max} ms`,
        );
      }
    }
  }
  const postgres = process.env.DATABASE_URL ? 'DATABASE_URL' : 'testkit (embedded or container)';
  if (liveWorkers() !== 0) throw new Error(`${liveWorkers()} worker process(es) left running`);

  for (const [runner, report] of reports) {
    for (const slot of Object.values(report.throughput)) {
      slot.medianTasksPerSec = round(median(slot.runs.map((r) => r.tasksPerSec)));
      const cpu = medianCpu(slot.runs);
      if (cpu) slot.medianCpu = cpu;
    }
    const runs = latencyRuns.get(runner);
    if (runs) {
      const m = (k: keyof LatencyResult) => round(median(runs.map((r) => r[k])), 2);
      report.latency = {
        runs,
        median: {
          samples: runs[0]!.samples,
          p50: m('p50'),
          p95: m('p95'),
          p99: m('p99'),
          max: m('max'),
          mean: m('mean'),
        },
      };
    }
  }
  const all = [...reports.values()];
  const comparison = compare(all);
  const file = writeResults(name, {
    benchmark: name,
    runs: RUNS,
    jobs: JOBS,
    samples: SAMPLES,
    warmup: WARMUP,
    processes: PROCESSES,
    method: {
      throughput:
        'jobs enqueued in bulk on a fresh database, then N worker processes started together; ' +
        'from the first handler start (reported by the workers) to the first 20 ms poll seeing no unfinished job',
      latency:
        'one worker process; sequential jobs, from just before the submit call to the handler start ' +
        '(performance.timeOrigin + performance.now() in both processes), waiting for the committed completion before the next',
    },
    postgres,
    machine: machine(),
    at: new Date().toISOString(),
    elapsedSeconds: round((performance.now() - t0) / 1000),
    peers: all,
    comparison,
  });

  console.log();
  printTable(
    all.flatMap((p) =>
      Object.entries(p.throughput).map(([n, s]) => ({
        peer: p.name,
        processes: n,
        'median tasks/s': s.medianTasksPerSec,
        runs: s.runs.map((r) => r.tasksPerSec).join(' / '),
        'CPU us/task: workers': s.medianCpu?.workerUsPerJob ?? '-',
        postgres: s.medianCpu?.postgresUsPerJob ?? '-',
      })),
    ),
  );
  console.log();
  printTable(
    all.flatMap((p) =>
      p.latency
        ? [
            {
              peer: p.name,
              samples: p.latency.median.samples,
              'p50 ms': p.latency.median.p50,
              'p95 ms': p.latency.median.p95,
              'p99 ms': p.latency.median.p99,
              'max ms': p.latency.median.max,
            },
          ]
        : [],
    ),
  );
  if (comparison.length > 0) {
    console.log();
    printTable(
      comparison.map((c) => ({
        baton: c.runner,
        figure: c.figure,
        'better peer': c.peer,
        'x (medians)': c.ratioOfMedians,
        'x per run': c.perRun.join(' / '),
        'x (median of runs)': c.medianRatio,
      })),
    );
  }
  console.log(`\nwritten to ${file}`);
}

/** Baton vs the better peer of the same run: > 1 means Baton is better (higher tasks/s, lower ms). */
export interface Comparison {
  runner: string;
  figure: string;
  peer: string;
  ratioOfMedians: number;
  perRun: number[];
  medianRatio: number;
}

export function compare(all: readonly PeerReport[]): Comparison[] {
  const peers = all.filter((p) => !isBaton(p) && !p.yardstick);
  const out: Comparison[] = [];
  for (const b of all.filter(isBaton)) {
    for (const [n, slot] of Object.entries(b.throughput)) {
      const rivals = peers.filter((p) => p.throughput[n]);
      if (rivals.length === 0) continue;
      const best = rivals.reduce((a, c) =>
        c.throughput[n]!.medianTasksPerSec > a.throughput[n]!.medianTasksPerSec ? c : a,
      );
      const perRun = slot.runs.map((r, i) => {
        const top = Math.max(...rivals.map((p) => p.throughput[n]!.runs[i]?.tasksPerSec ?? 0));
        return round(r.tasksPerSec / top, 2);
      });
      out.push({
        runner: b.name,
        figure: `throughput, ${n} process(es)`,
        peer: best.name,
        ratioOfMedians: round(slot.medianTasksPerSec / best.throughput[n]!.medianTasksPerSec, 2),
        perRun,
        medianRatio: round(median(perRun), 2),
      });
    }
    const lat = b.latency;
    if (!lat) continue;
    const rivals = peers.filter((p) => p.latency);
    if (rivals.length === 0) continue;
    for (const k of ['p50', 'p99'] as const) {
      const best = rivals.reduce((a, c) => (c.latency!.median[k] < a.latency!.median[k] ? c : a));
      const perRun = lat.runs.map((r, i) => {
        const top = Math.min(...rivals.map((p) => p.latency!.runs[i]?.[k] ?? Infinity));
        return round(top / r[k], 2);
      });
      out.push({
        runner: b.name,
        figure: `latency ${k}`,
        peer: best.name,
        ratioOfMedians: round(best.latency!.median[k] / lat.median[k], 2),
        perRun,
        medianRatio: round(median(perRun), 2),
      });
    }
  }
  return out;
}
