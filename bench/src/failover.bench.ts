/**
 * `pnpm bench failover`: warm-backup failover with real node processes
 * (issue #4, "Benchmark"). Three nodes (services/node) share one group on a
 * fresh database, under a steady stream of short tasks; the handler module
 * (./failover/handlers.ts) has a coordinated service `tick` every 50 ms whose
 * `execute` reports its start to this process. BENCH_TRIALS (20) trials of
 * SIGKILL on the current bearer, then as many of SIGTERM; each measures the
 * time from the signal to the first `execute` on the new bearer. The
 * signalled node is started again (same id) after each trial, so there are
 * always three.
 *
 * `pnpm bench failover --soak [minutes]`: the no-false-failover run. Three
 * nodes whose handlers keep every core busy (CPU work in worker threads,
 * BENCH_BURN_THREADS per node, default one per core; a backlog of such tasks
 * is kept), plus BENCH_BURNERS (default: one per core) busy-loop processes;
 * nothing is killed; every grant after the first in `token_grants` is a false
 * failover. Minutes: the argument, else BENCH_SOAK_MINUTES, else 10.
 *
 * Both write their part of bench/results/failover.json (the other part is
 * kept). Environment: BENCH_TRIALS (20), BENCH_SETTLE_MS (1500, quiet time
 * after a restart before the next trial), BENCH_LOAD_RATE (100 short tasks/s
 * during the trials), BENCH_TRIAL_TIMEOUT_MS (15000), BENCH_BUS (`postgres`,
 * the default without NATS_URL, or `nats`: NATS_URL or a nats-server found by
 * the testkit), BENCH_KINDS ("SIGKILL,SIGTERM"), BENCH_RESULTS_NAME (the
 * results file, default `failover`). Soak: BENCH_BURN_THREADS, BENCH_BURNERS,
 * BENCH_BURN_TASK_MS (200), BENCH_SOAK_SLICE_MS (0: worker threads; > 0: burn
 * on the nodes' main threads in slices of that length). BATON_* variables set for
 * the bench are passed to the nodes (to try other settings); by default the
 * nodes run at the defaults (heartbeatFrequency 0.1 s, livenessCheckInterval 0.5 s).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createStore, type Store } from '@baton/store';
import {
  createNatsBus,
  createPostgresBus,
  encodeMessage,
  groupSubjects,
  type Bus,
} from '@baton/runtime';
import { NodeProcess, resolveNats, type NatsServerInfo } from '@baton/testkit';
import type { ExecuteReport } from './failover/handlers.js';
import {
  benchDatabase,
  machine,
  median,
  percentile,
  printTable,
  resultsDir,
  round,
  writeResults,
  type BenchDatabase,
} from './lib.js';

const GROUP = 'bench';
const NODE_IDS = ['n1', 'n2', 'n3'] as const;
const TICK_S = 0.05;
const handlersModule = fileURLToPath(new URL('./failover/handlers.ts', import.meta.url));

const env = process.env;
const TRIALS = Number(env.BENCH_TRIALS ?? 20);
const SETTLE_MS = Number(env.BENCH_SETTLE_MS ?? 1500);
const LOAD_RATE = Number(env.BENCH_LOAD_RATE ?? 100);
const TRIAL_TIMEOUT_MS = Number(env.BENCH_TRIAL_TIMEOUT_MS ?? 15_000);
const KINDS = (env.BENCH_KINDS ?? 'SIGKILL,SIGTERM').split(',').map((s) => s.trim()) as (
  'SIGKILL' | 'SIGTERM'
)[];
const CORES = cpus().length;
/** Results file name under bench/results/ (BENCH_RESULTS_NAME, for experiments that must not overwrite the figures). */
const OUT = env.BENCH_RESULTS_NAME ?? 'failover';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const mono = () => process.hrtime.bigint();
const msBetween = (from: bigint, to: bigint) => Number(to - from) / 1e6;

/** BATON_* settings given to the bench, passed on to the nodes. */
function batonOverrides(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith('BATON_') && v !== undefined) out[k] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Everything this benchmark starts, stopped on every exit path.

const burners = new Set<ChildProcess>();
let cleanup: (() => Promise<void>) | undefined;

function killSync(): void {
  for (const b of burners) b.kill('SIGKILL');
  void NodeProcess.killAll();
}

function installSignalHandlers(): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`\n${signal}: stopping every process the benchmark started`);
    killSync();
    const done = cleanup?.() ?? Promise.resolve();
    void Promise.race([done, sleep(15_000)]).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killSync);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killSync);
  };
}

/** `yes > /dev/null`-style CPU burners (separate processes). */
function startBurners(n: number): void {
  for (let i = 0; i < n; i++) {
    const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    burners.add(child);
    child.once('exit', () => burners.delete(child));
  }
}

async function stopBurners(): Promise<void> {
  await Promise.all(
    [...burners].map(
      (b) =>
        new Promise<void>((resolve) => {
          b.once('exit', () => resolve());
          b.kill('SIGKILL');
        }),
    ),
  );
}

// ---------------------------------------------------------------------------
// Execute reports (UDP datagrams from the nodes' `tick` service).

interface Received extends ExecuteReport {
  readonly monoNs: bigint;
}

class Reports {
  readonly all: Received[] = [];
  readonly #socket: Socket = createSocket('udp4');
  readonly #waiters = new Set<{
    match: (r: Received) => boolean;
    resolve: (r: Received) => void;
  }>();
  malformed = 0;

  async listen(): Promise<number> {
    this.#socket.on('message', (buf) => {
      let r: Received;
      try {
        const m = JSON.parse(buf.toString('utf8')) as ExecuteReport;
        r = { ...m, monoNs: BigInt(m.mono) };
      } catch {
        this.malformed++;
        return;
      }
      this.all.push(r);
      for (const w of this.#waiters) {
        if (w.match(r)) {
          this.#waiters.delete(w);
          w.resolve(r);
        }
      }
    });
    await new Promise<void>((resolve) => this.#socket.bind(0, '127.0.0.1', resolve));
    return this.#socket.address().port;
  }

  get last(): Received | undefined {
    return this.all.at(-1);
  }

  /** The first report (from index `from` on) that matches, or null after `timeoutMs`. */
  async first(
    from: number,
    match: (r: Received) => boolean,
    timeoutMs: number,
  ): Promise<Received | null> {
    const seen = this.all.slice(from).find(match);
    if (seen) return seen;
    return new Promise((resolve) => {
      const waiter = {
        match,
        resolve: (r: Received | null) => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve(r);
        },
      };
      const timer = setTimeout(() => waiter.resolve(null), timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  close(): void {
    this.#socket.close();
  }
}

// ---------------------------------------------------------------------------
// The cluster.

class Cluster {
  readonly nodes = new Map<string, NodeProcess>();
  readonly startedAt = new Map<string, bigint>();
  /** Role-change log lines of processes that have exited (kept for the analysis). */
  readonly pastOutput: string[] = [];

  constructor(readonly nodeEnv: (id: string) => Record<string, string>) {}

  async start(id: string): Promise<NodeProcess> {
    const node = await NodeProcess.start(id, this.nodeEnv(id));
    this.nodes.set(id, node);
    this.startedAt.set(id, mono());
    return node;
  }

  async startAll(): Promise<void> {
    await Promise.all(NODE_IDS.map((id) => this.start(id)));
  }

  allRunning(): boolean {
    return NODE_IDS.every((id) => this.nodes.get(id)?.running);
  }

  /** Role changes and warnings the nodes logged (pino JSON lines). */
  roleLines(): string[] {
    const lines = [...this.pastOutput, ...[...this.nodes.values()].flatMap((n) => n.output)];
    return lines.filter((l) => /warm-backup role|renew|step|lease|acquire|error/i.test(l));
  }

  /** Counts of the election's log lines over every process so far: step-downs by reason, grants, failures. */
  electionLog(): Record<string, number> {
    const lines = [...this.pastOutput, ...[...this.nodes.values()].flatMap((n) => n.output)];
    const counts: Record<string, number> = {};
    for (const line of lines) {
      let entry: { msg?: string; reason?: string };
      try {
        entry = JSON.parse(line.replace(/^\[n\d\] /, '')) as { msg?: string; reason?: string };
      } catch {
        continue;
      }
      const key =
        entry.msg === 'stepped down'
          ? `stepped down: ${entry.reason}`
          : entry.msg && /token|renew|acquire|release|reading/.test(entry.msg)
            ? entry.msg
            : null;
      if (key) counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  /** The watchdog's status (election counters) of every live node. */
  async watchdogs(): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const [id, node] of this.nodes) {
      if (!node.running) continue;
      try {
        const { http } = await node.ready;
        const status = (await (await fetch(`${http}/api/status`)).json()) as {
          actors?: { watchdog?: unknown };
        };
        out[id] = status.actors?.watchdog ?? null;
      } catch (error) {
        out[id] = `unavailable: ${(error as Error).message}`;
      }
    }
    return out;
  }

  retire(id: string): void {
    const n = this.nodes.get(id);
    if (n) this.pastOutput.push(...n.output.map((l) => `[${id}] ${l}`));
  }

  async stopAll(): Promise<void> {
    for (const id of this.nodes.keys()) this.retire(id);
    await NodeProcess.killAll();
  }
}

// ---------------------------------------------------------------------------
// Load.

interface Load {
  stop(): Promise<void>;
  readonly submitted: () => number;
  readonly errors: () => number;
}

function wakeUp(bus: Bus): Promise<void> {
  return bus
    .publish(
      groupSubjects(GROUP).dispatch('default'),
      encodeMessage({ queue: 'default', reason: 'submitted', from: 'bench' }),
    )
    .catch(() => undefined);
}

/** A steady stream: `rate` short tasks per second, in batches every 100 ms. */
function steadyLoad(store: Store, bus: Bus, rate: number): Load {
  let submitted = 0;
  let errors = 0;
  let stopped = false;
  const loop = (async () => {
    const perBatch = rate / 10;
    let owed = 0;
    while (!stopped) {
      const t = performance.now();
      owed += perBatch;
      const n = Math.floor(owed);
      owed -= n;
      if (n > 0) {
        try {
          await store.tasks.enqueueMany(
            Array.from({ length: n }, () => ({ type: 'short', payload: { cpuMs: 1 } })),
          );
          submitted += n;
          await wakeUp(bus);
        } catch {
          errors++;
        }
      }
      await sleep(Math.max(0, 100 - (performance.now() - t)));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
    },
    submitted: () => submitted,
    errors: () => errors,
  };
}

/** Keeps `target` CPU-burning tasks waiting, so every node's burn threads never idle. */
function backlogLoad(
  store: Store,
  bus: Bus,
  target: number,
  taskMs: number,
  sliceMs: number,
): Load {
  let submitted = 0;
  let errors = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const { pending } = await store.tasks.counts();
        if (pending < target) {
          const n = 2 * target - pending;
          await store.tasks.enqueueMany(
            Array.from({ length: n }, () => ({
              type: 'burn',
              payload: { ms: taskMs, sliceMs },
            })),
          );
          submitted += n;
          await wakeUp(bus);
        }
      } catch {
        errors++;
      }
      await sleep(250);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
    },
    submitted: () => submitted,
    errors: () => errors,
  };
}

/** Load average every 10 s. */
function loadSampler(): { stop(): { at: number; loadavg: number[] }[] } {
  const t0 = Date.now();
  const samples: { at: number; loadavg: number[] }[] = [];
  const take = () =>
    samples.push({
      at: round((Date.now() - t0) / 1000),
      loadavg: loadavg().map((x) => round(x, 2)),
    });
  take();
  const timer = setInterval(take, 10_000);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

// ---------------------------------------------------------------------------
// Setup shared by both modes.

interface Harness {
  db: BenchDatabase;
  pool: pg.Pool;
  store: Store;
  bus: Bus;
  nats: NatsServerInfo | null;
  reports: Reports;
  cluster: Cluster;
  busKind: 'postgres' | 'nats';
  natsUrl: string | null;
}

async function openHarness(extraNodeEnv: Record<string, string>): Promise<Harness> {
  const parts: Partial<Harness> = {};
  cleanup = () => closeHarness(parts);
  parts.db = await benchDatabase('failover');
  const busKind =
    env.BENCH_BUS === 'nats' || (!env.BENCH_BUS && env.NATS_URL) ? 'nats' : 'postgres';
  let natsUrl: string | null = null;
  if (busKind === 'nats') {
    parts.nats = await resolveNats();
    if (!parts.nats.url) throw new Error(`BENCH_BUS=nats: ${parts.nats.reason}`);
    natsUrl = parts.nats.url;
  }
  parts.pool = new pg.Pool({ connectionString: parts.db.url, max: 4 });
  parts.pool.on('error', () => {});
  parts.store = createStore({ pool: parts.pool });
  parts.bus = natsUrl
    ? await createNatsBus({ servers: [natsUrl], name: 'baton-bench' })
    : await createPostgresBus({ pool: parts.pool, applicationName: 'baton-bench' });
  parts.reports = new Reports();
  const port = await parts.reports.listen();
  const overrides = batonOverrides();
  const url = parts.db.url;
  parts.cluster = new Cluster((id) => ({
    DATABASE_URL: url,
    ...(natsUrl ? { NATS_URL: natsUrl } : {}),
    BATON_GROUP: GROUP,
    BATON_NODE_ID: id,
    BATON_HANDLERS: handlersModule,
    BATON_HTTP_PORT: '0',
    BATON_HTTP_HOST: '127.0.0.1',
    BATON_LOG_LEVEL: 'info',
    ...overrides,
    BENCH_REPORT_PORT: String(port),
    BENCH_TICK_S: String(TICK_S),
    ...extraNodeEnv,
  }));
  return { ...(parts as Required<Omit<Harness, 'busKind' | 'natsUrl'>>), busKind, natsUrl };
}

async function closeHarness(h: Partial<Harness>): Promise<void> {
  await stopBurners();
  await h.cluster?.stopAll();
  await NodeProcess.killAll();
  h.reports?.close();
  await h.bus?.close().catch(() => undefined);
  await h.pool?.end().catch(() => undefined);
  await h.nats?.stop().catch(() => undefined);
  await h.db?.drop().catch((e: unknown) => console.error('dropping the database failed:', e));
}

async function bearerRow(pool: pg.Pool) {
  const { rows } = await pool.query<{ holder: string | null; term: number; live: boolean }>(
    `select task_id as holder, term::int, lease_expires_at > now() as live
       from baton.token_holder where group_id = $1`,
    [GROUP],
  );
  return rows[0];
}

interface GrantRow {
  term: number;
  holder: string;
  granted_at: Date;
  reason: string;
}

async function grants(pool: pg.Pool, afterTerm = 0): Promise<GrantRow[]> {
  const { rows } = await pool.query<GrantRow>(
    `select term::int, task_id as holder, granted_at, reason from baton.token_grants
      where group_id = $1 and term > $2 order by term`,
    [GROUP, afterTerm],
  );
  return rows;
}

/** Waits until the service runs steadily on a bearer that the token row names, with all nodes up and settled. */
async function steady(h: Harness, settleMs: number, timeoutMs = 60_000): Promise<Received> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = h.reports.last;
    const now = mono();
    const settled = [...h.cluster.startedAt.values()].every((t) => msBetween(t, now) >= settleMs);
    if (
      last &&
      h.cluster.allRunning() &&
      settled &&
      msBetween(last.monoNs, now) < 4 * TICK_S * 1000
    ) {
      const row = await bearerRow(h.pool);
      if (row?.live && row.holder === last.node && row.term === last.term) return last;
    }
    if (Date.now() > deadline) throw new Error('no steady bearer within a minute');
    await sleep(20);
  }
}

function resultsFile(): Record<string, unknown> {
  const file = `${resultsDir}${OUT}.json`;
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

const settings = () => ({
  heartbeatFrequencyS: Number(env.BATON_HEARTBEAT_FREQUENCY ?? 0.1),
  livenessCheckIntervalS: Number(env.BATON_LIVENESS_CHECK_INTERVAL ?? 0.5),
  nodeOverrides: batonOverrides(),
  serviceIntervalS: TICK_S,
  nodes: NODE_IDS.length,
});

// ---------------------------------------------------------------------------
// Trials.

interface Trial {
  trial: number;
  signal: 'SIGKILL' | 'SIGTERM';
  /** Wall-clock time of the signal (to read the nodes' logs against). */
  signalAt: string;
  victim: string;
  victimTerm: number;
  /** Signal -> first execute on the new bearer (CLOCK_MONOTONIC in both processes). */
  ms: number | null;
  newBearer: string | null;
  newTerm: number | null;
  /** Grants after the victim's term (normally one), PostgreSQL's clock relative to the signal (wall clock). */
  grants: { term: number; holder: string; reason: string; msAfterSignal: number }[];
  /** The new term's first service_runs row (recorded before execute), relative to the signal. */
  recordedMsAfterSignal: number | null;
  /** executes by the victim after the signal (a SIGTERMed bearer may run until it resigns). */
  victimExecutesAfterSignal: number;
  /** The victim's exit after the signal. */
  exitMs: number;
  loadavg1: number;
}

function tally(xs: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

function summary(xs: readonly number[]) {
  if (xs.length === 0) return { n: 0, p50: null, p99: null, max: null, mean: null };
  return {
    n: xs.length,
    p50: round(median(xs), 1),
    p99: round(percentile(xs, 99), 1),
    max: round(Math.max(...xs), 1),
    mean: round(xs.reduce((a, b) => a + b, 0) / xs.length, 1),
  };
}

async function runTrial(h: Harness, signal: 'SIGKILL' | 'SIGTERM', trial: number): Promise<Trial> {
  const before = await steady(h, SETTLE_MS);
  const victimId = before.node;
  const victim = h.cluster.nodes.get(victimId)!;
  const from = h.reports.all.length;
  const wall0 = Date.now();
  const t0 = mono();
  victim.signal(signal);
  const exited = victim.exited.then(() => mono());
  const first = await h.reports.first(
    from,
    (r) => r.node !== victimId && r.term > before.term,
    TRIAL_TIMEOUT_MS,
  );
  const exit = await Promise.race([exited, sleep(30_000).then(() => null)]);
  if (exit === null) {
    console.warn(`  ${victimId} did not exit 30 s after ${signal}: SIGKILL`);
    await victim.kill();
  }
  const exitMs = msBetween(t0, exit ?? mono());
  const g = await grants(h.pool, before.term);
  const upTo = first ? g.filter((x) => x.term <= first.term) : g;
  let recordedMsAfterSignal: number | null = null;
  if (first) {
    const { rows } = await h.pool.query<{ started_at: Date }>(
      `select started_at from baton.service_runs
        where group_id = $1 and service = 'tick' and term = $2 order by id limit 1`,
      [GROUP, first.term],
    );
    if (rows[0]) recordedMsAfterSignal = rows[0].started_at.getTime() - wall0;
  }
  const result: Trial = {
    trial,
    signal,
    signalAt: new Date(wall0).toISOString(),
    victim: victimId,
    victimTerm: before.term,
    ms: first ? round(msBetween(t0, first.monoNs), 1) : null,
    newBearer: first?.node ?? null,
    newTerm: first?.term ?? null,
    grants: upTo.map((x) => ({
      term: x.term,
      holder: x.holder,
      reason: x.reason,
      msAfterSignal: x.granted_at.getTime() - wall0,
    })),
    recordedMsAfterSignal,
    victimExecutesAfterSignal: h.reports.all.slice(from).filter((r) => r.node === victimId).length,
    exitMs: round(exitMs),
    loadavg1: round(loadavg()[0]!, 2),
  };
  // Back to three nodes.
  h.cluster.retire(victimId);
  await h.cluster.start(victimId);
  return result;
}

async function runTrials(): Promise<void> {
  const uninstall = installSignalHandlers();
  const h = await openHarness({});
  const t0 = performance.now();
  const sampler = loadSampler();
  let load: Load | undefined;
  const trials: Trial[] = [];
  try {
    await h.cluster.startAll();
    load = steadyLoad(h.store, h.bus, LOAD_RATE);
    await steady(h, SETTLE_MS);
    for (const kind of KINDS) {
      for (let i = 1; i <= TRIALS; i++) {
        const t = await runTrial(h, kind, i);
        trials.push(t);
        console.log(
          `${kind} #${i}: ${t.victim}(term ${t.victimTerm}) -> ${t.newBearer ?? 'none'}(term ${t.newTerm ?? '-'}) ` +
            `${t.ms ?? 'timeout'} ms; grant ${t.grants.map((g) => `${g.msAfterSignal} ms ${g.reason}`).join(', ')}; ` +
            `load ${t.loadavg1}`,
        );
      }
    }
    await load.stop();
    const watchdogs = await h.cluster.watchdogs();
    const allGrants = await grants(h.pool);
    const inTrials = new Set(trials.flatMap((t) => t.grants.map((g) => g.term)));
    const spurious = allGrants.filter((g) => g.term > 1 && !inTrials.has(g.term));
    const counts = await h.store.tasks.counts();
    const loadSamples = sampler.stop();
    const byKind = Object.fromEntries(
      KINDS.map((kind) => {
        const ts = trials.filter((t) => t.signal === kind);
        const samples = ts.map((t) => t.ms).filter((x): x is number => x !== null);
        const timeouts = ts.length - samples.length;
        const withTimeouts = [...samples, ...Array<number>(timeouts).fill(TRIAL_TIMEOUT_MS)];
        const grantMs = ts
          .map((t) => t.grants[0]?.msAfterSignal)
          .filter((x): x is number => x !== undefined);
        return [
          kind,
          {
            trials: ts.length,
            timeouts,
            ...summary(withTimeouts),
            samples,
            grantAfterSignal: summary(grantMs),
            extraGrants: ts.reduce((n, t) => n + Math.max(0, t.grants.length - 1), 0),
          },
        ];
      }),
    );
    const previous = resultsFile();
    const file = writeResults(OUT, {
      ...previous,
      benchmark: 'failover',
      trials: {
        at: new Date().toISOString(),
        elapsedSeconds: round((performance.now() - t0) / 1000),
        targets: { SIGKILL_p99_ms: 1000, SIGTERM_p99_ms: 100 },
        met: {
          SIGKILL: byKind.SIGKILL ? (byKind.SIGKILL.p99 ?? Infinity) <= 1000 : null,
          SIGTERM: byKind.SIGTERM ? (byKind.SIGTERM.p99 ?? Infinity) <= 100 : null,
        },
        method:
          'Each trial waits until all three nodes run (the last restart at least BENCH_SETTLE_MS ago) and the ' +
          'bearer named by token_holder is the node whose tick executes arrive (one within the last 200 ms). ' +
          "The bench then reads process.hrtime.bigint() and signals the bearer; the tick service's execute on " +
          'every node sends process.hrtime.bigint() at its start (a UDP datagram to the bench). Both are ' +
          'CLOCK_MONOTONIC on Linux: one clock for all processes of the machine, nanosecond resolution, not ' +
          'affected by wall-clock adjustments, and independent of when the datagram arrives. The sample is ' +
          'the first execute by another node with a newer term, minus the signal time. execute runs after ' +
          'Baton recorded the run in service_runs (fenced by the term), so the sample includes that write. ' +
          'Breakdown (wall clock, PostgreSQL on the same host): grant = token_grants.granted_at and ' +
          'recorded = service_runs.started_at of the new term, minus Date.now() at the signal. The ' +
          'signalled node is started again with the same id after each trial. p99 of 20 samples is the ' +
          'largest sample (nearest rank). Timeouts count as BENCH_TRIAL_TIMEOUT_MS.',
        load: {
          shortTasksPerSecond: LOAD_RATE,
          submitted: load.submitted(),
          submitErrors: load.errors(),
          taskCountsAtEnd: counts,
        },
        settings: { ...settings(), settleMs: SETTLE_MS, bus: h.busKind },
        machine: machine(),
        loadavg: loadSamples,
        results: byKind,
        /** Grants not caused by a trial's signal (the first grant excepted): the bearer stepped down on its own. */
        grantsOutsideTrials: spurious.length,
        grantsTotal: allGrants.length,
        grantReasonsOutsideTrials: tally(spurious.map((g) => g.reason.replace(/:.*/, ''))),
        electionLog: h.cluster.electionLog(),
        watchdogsAtEnd: watchdogs,
        trials,
        nodeLog: h.cluster.roleLines().slice(-400),
      },
    });
    console.log();
    printTable(
      KINDS.map((kind) => {
        const r = byKind[kind]!;
        return {
          signal: kind,
          trials: r.trials,
          timeouts: r.timeouts,
          'p50 ms': r.p50 ?? '-',
          'p99 ms': r.p99 ?? '-',
          'max ms': r.max ?? '-',
          'grant p50 ms': r.grantAfterSignal.p50 ?? '-',
          target: kind === 'SIGKILL' ? 'p99 <= 1000' : 'p99 <= 100',
        };
      }),
    );
    console.log(
      `\nload average (1/5/15 min) at the end: ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
    console.log(`wrote ${file}`);
  } finally {
    await load?.stop().catch(() => undefined);
    await closeHarness(h);
    cleanup = undefined;
    uninstall();
  }
}

// ---------------------------------------------------------------------------
// Soak: no false failover while every core is busy.

async function runSoak(minutes: number): Promise<void> {
  const uninstall = installSignalHandlers();
  const threads = Number(env.BENCH_BURN_THREADS ?? CORES);
  const burnerCount = Number(env.BENCH_BURNERS ?? CORES);
  const taskMs = Number(env.BENCH_BURN_TASK_MS ?? 200);
  const sliceMs = Number(env.BENCH_SOAK_SLICE_MS ?? 0);
  const h = await openHarness({ BENCH_BURN_THREADS: String(threads) });
  const t0 = performance.now();
  let load: Load | undefined;
  try {
    await h.cluster.startAll();
    const first = await steady(h, 0);
    const initial = await grants(h.pool);
    console.log(
      `soak: ${minutes} min; bearer ${first.node} (term ${first.term}); ${NODE_IDS.length} nodes × ${threads} burn thread(s) ` +
        `${sliceMs > 0 ? `(main-thread slices of ${sliceMs} ms)` : '(worker threads)'} + ${burnerCount} burner process(es)`,
    );
    load = backlogLoad(h.store, h.bus, NODE_IDS.length * threads * 4, taskMs, sliceMs);
    startBurners(burnerCount);
    const sampler = loadSampler();
    const from = h.reports.all.length;
    const startMono = mono();
    const endAt = Date.now() + minutes * 60_000;
    let lastPrint = Date.now();
    while (Date.now() < endAt) {
      await sleep(1000);
      if (Date.now() - lastPrint >= 30_000) {
        lastPrint = Date.now();
        const g = await grants(h.pool);
        console.log(
          `  ${round((performance.now() - t0) / 1000)} s: grants ${g.length}, load ${loadavg()[0]!.toFixed(2)}, ` +
            `tasks submitted ${load.submitted()}`,
        );
      }
      if (!h.cluster.allRunning()) throw new Error('a node exited during the soak');
    }
    const endMono = mono();
    const loadSamples = sampler.stop();
    await stopBurners();
    await load.stop();
    const all = await grants(h.pool);
    const falseFailovers = all.filter((g) => g.term > initial.at(-1)!.term);
    // The service's rhythm during the run: gaps between consecutive executes.
    const runs = h.reports.all.slice(from).filter((r) => r.monoNs <= endMono);
    const gaps = runs.slice(1).map((r, i) => msBetween(runs[i]!.monoNs, r.monoNs));
    const counts = await h.store.tasks.counts();
    const watchdogs = await h.cluster.watchdogs();
    const result = {
      at: new Date().toISOString(),
      minutes,
      elapsedSeconds: round(msBetween(startMono, endMono) / 1000),
      falseFailovers: falseFailovers.length,
      grants: all.map((g) => ({
        term: g.term,
        holder: g.holder,
        reason: g.reason,
        at: g.granted_at.toISOString(),
      })),
      method:
        'Three nodes, none killed. CPU: every node runs BENCH_BURN_THREADS worker threads that burn CPU ' +
        'for tasks of BENCH_BURN_TASK_MS each (a backlog of such tasks is kept, so the threads never idle), ' +
        'and BENCH_BURNERS separate busy-loop processes run alongside. A false failover is a grant in ' +
        'token_grants after the first one (nothing was killed, so every further grant is false).',
      cpu: {
        cores: CORES,
        burnThreadsPerNode: threads,
        burnerProcesses: burnerCount,
        burnTaskMs: taskMs,
        mainThreadSliceMs: sliceMs,
        burnTasksSubmitted: load.submitted(),
        taskCountsAtEnd: counts,
      },
      service: {
        executes: runs.length,
        expected: Math.floor(msBetween(startMono, endMono) / (TICK_S * 1000)),
        gapMs: { ...summary(gaps), samples: undefined },
        gapsOver200ms: gaps.filter((g) => g > 200).length,
      },
      settings: { ...settings(), bus: h.busKind },
      machine: machine(),
      loadavg: loadSamples,
      electionLog: h.cluster.electionLog(),
      watchdogsAtEnd: watchdogs,
      nodeLog: h.cluster.roleLines().slice(-200),
    };
    const file = writeResults(OUT, { ...resultsFile(), benchmark: 'failover', soak: result });
    console.log();
    printTable([
      {
        minutes,
        'false failovers': result.falseFailovers,
        grants: all.length,
        executes: runs.length,
        'max gap ms': result.service.gapMs.max ?? '-',
        'load1 max': Math.max(...loadSamples.map((s) => s.loadavg[0]!)),
      },
    ]);
    console.log(`wrote ${file}`);
  } finally {
    await load?.stop().catch(() => undefined);
    await closeHarness(h);
    cleanup = undefined;
    uninstall();
  }
}

export async function benchFailover(
  args: readonly string[] = process.argv.slice(3),
): Promise<void> {
  const i = args.indexOf('--soak');
  if (i === -1) return runTrials();
  const arg = args[i + 1];
  const minutes = Number(
    arg !== undefined && !arg.startsWith('--') ? arg : (env.BENCH_SOAK_MINUTES ?? 10),
  );
  if (!Number.isFinite(minutes) || minutes <= 0) throw new Error(`--soak: bad minutes ${arg}`);
  return runSoak(minutes);
}
