import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { register as globalRegistry } from 'prom-client';
import {
  createMetrics,
  MAX_ENQUEUED_TYPE_LABELS,
  OTHER_TYPE_LABEL,
  type BatonMetrics,
} from '../src/observability/metrics.js';
import { startHttpServer, type HttpServerHandle } from '../src/observability/http.js';
import { ObservabilityConfigError } from '../src/observability/errors.js';
import type { TaskCounts } from '../src/observability/task-counts.js';

const info = { node: 'n1', group: 'orders', version: '0.1.0', bus: 'nats' };

function deferred<T>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Value of one sample line, e.g. `baton_tasks{status="pending"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics over /metrics', () => {
  let server: HttpServerHandle | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const serve = async (metrics: BatonMetrics): Promise<Response> => {
    server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      registry: metrics.registry,
      health: () => Promise.reject(new Error('unused')),
      ready: () => true,
    });
    return fetch(`${server.url}/metrics`);
  };

  it('exposes every metric with the baton_ prefix, its help text, labels and the registry content type', async () => {
    const metrics = createMetrics({ nodeInfo: info });
    metrics.tasksEnqueued.inc({ type: 'email' }, 2);
    metrics.recordOutcome('email', 'completed', 0.004);
    metrics.recordOutcome('email', 'retry', 0.2);
    metrics.recordOutcome('email', 'dead_letter', 1.5);
    metrics.recordOutcome('email', 'cancelled', 0.01);
    metrics.recordStaleWrite('attempt');
    metrics.submissionsRejected.inc({ reason: 'INVALID_ARGUMENT' });
    metrics.busMessagesDropped.inc({ subject_kind: 'submit', reason: 'BAD_ENCODING' });
    metrics.busReconnects.inc();
    metrics.workerPoolActive.set(3);
    metrics.workerPoolCapacity.set(16);
    metrics.setMembers({ alive: 2, suspect: 1 });
    metrics.setLeader('orders', true, 7);
    metrics.claimDuration.observe(0.0007);
    metrics.setTaskCountsSource(() => Promise.resolve({ pending: 12, running: 3 }));

    const res = await serve(metrics);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(metrics.registry.contentType);
    const text = await res.text();

    expect(sample(text, 'baton_tasks_enqueued_total{type="email"}')).toBe(2);
    for (const status of ['completed', 'retry', 'dead_letter', 'cancelled']) {
      expect(sample(text, `baton_tasks_completed_total{type="email",status="${status}"}`)).toBe(1);
    }
    expect(sample(text, 'baton_task_retries_total{type="email"}')).toBe(1);
    expect(sample(text, 'baton_tasks_dead_lettered_total{type="email"}')).toBe(1);
    expect(sample(text, 'baton_stale_writes_rejected_total{kind="attempt"}')).toBe(1);
    expect(sample(text, 'baton_stale_writes_rejected_total{kind="term"}')).toBe(0);
    expect(sample(text, 'baton_submissions_rejected_total{reason="INVALID_ARGUMENT"}')).toBe(1);
    expect(
      sample(text, 'baton_bus_messages_dropped_total{subject_kind="submit",reason="BAD_ENCODING"}'),
    ).toBe(1);
    expect(sample(text, 'baton_bus_reconnects_total')).toBe(1);
    expect(sample(text, 'baton_tasks{status="pending"}')).toBe(12);
    expect(sample(text, 'baton_tasks{status="running"}')).toBe(3);
    expect(sample(text, 'baton_worker_pool_active')).toBe(3);
    expect(sample(text, 'baton_worker_pool_capacity')).toBe(16);
    expect(sample(text, 'baton_group_members{state="alive"}')).toBe(2);
    expect(sample(text, 'baton_group_members{state="suspect"}')).toBe(1);
    expect(sample(text, 'baton_group_members{state="gone"}')).toBe(0);
    expect(sample(text, 'baton_leader{group="orders"}')).toBe(1);
    expect(sample(text, 'baton_leader_term{group="orders"}')).toBe(7);
    expect(
      sample(text, 'baton_node_info{node="n1",group="orders",version="0.1.0",bus="nats"}'),
    ).toBe(1);
    // Histogram buckets: tasks 1 ms .. 60 s, claims 0.5 ms .. 1 s.
    expect(
      sample(
        text,
        'baton_task_duration_seconds_bucket{le="0.001",type="email",status="completed"}',
      ),
    ).toBe(0);
    expect(
      sample(
        text,
        'baton_task_duration_seconds_bucket{le="0.005",type="email",status="completed"}',
      ),
    ).toBe(1);
    expect(
      sample(text, 'baton_task_duration_seconds_bucket{le="60",type="email",status="dead_letter"}'),
    ).toBe(1);
    expect(sample(text, 'baton_claim_duration_seconds_bucket{le="0.0005"}')).toBe(0);
    expect(sample(text, 'baton_claim_duration_seconds_bucket{le="0.001"}')).toBe(1);
    expect(sample(text, 'baton_claim_duration_seconds_bucket{le="1"}')).toBe(1);
    expect(sample(text, 'baton_claim_duration_seconds_count')).toBe(1);

    const declared = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]);
    expect(declared).toEqual(
      expect.arrayContaining([
        ['baton_tasks_completed_total', 'counter'],
        ['baton_tasks', 'gauge'],
        ['baton_task_duration_seconds', 'histogram'],
        ['baton_claim_duration_seconds', 'histogram'],
      ]),
    );
    for (const metric of await metrics.registry.getMetricsAsJSON()) {
      expect(metric.name).toMatch(/^baton_[a-z_]+$/);
      expect(metric.help.length).toBeGreaterThan(10);
      if (String(metric.type) === 'counter') expect(metric.name).toMatch(/_total$/);
    }
  });

  it('records a batch of outcomes at once: counters by the batch size, durations that are not negative numbers left out', async () => {
    const metrics = createMetrics({ nodeInfo: info });
    metrics.recordOutcomes('email', 'completed', [0.002, 0.004, 0.3]);
    metrics.recordOutcomes('email', 'retry', [0.2, -1, Number.NaN]);
    metrics.recordOutcomes('email', 'dead_letter', [1.5, 2]);
    metrics.recordOutcomes('sms', 'completed', []);
    const text = await metrics.registry.metrics();
    expect(sample(text, 'baton_tasks_completed_total{type="email",status="completed"}')).toBe(3);
    expect(sample(text, 'baton_tasks_completed_total{type="email",status="retry"}')).toBe(3);
    expect(sample(text, 'baton_task_retries_total{type="email"}')).toBe(3);
    expect(sample(text, 'baton_tasks_dead_lettered_total{type="email"}')).toBe(2);
    expect(
      sample(
        text,
        'baton_task_duration_seconds_bucket{le="0.005",type="email",status="completed"}',
      ),
    ).toBe(2);
    expect(sample(text, 'baton_task_duration_seconds_count{type="email",status="completed"}')).toBe(
      3,
    );
    // The retries' -1 and NaN are counted as outcomes but not as durations.
    expect(sample(text, 'baton_task_duration_seconds_count{type="email",status="retry"}')).toBe(1);
    // An empty batch makes no series.
    expect(text).not.toContain('type="sms"');
    expect(() => metrics.recordOutcomes('email', 'lost' as 'completed', [1])).toThrow(
      /unknown task outcome: lost/,
    );
  });

  it('labels enqueued tasks by type up to a bound, and counts further types as (other)', async () => {
    const metrics = createMetrics();
    for (let i = 0; i < MAX_ENQUEUED_TYPE_LABELS + 50; i++) metrics.recordEnqueued(`t${i}`);
    metrics.recordEnqueued('t0');
    metrics.recordEnqueued(`t${MAX_ENQUEUED_TYPE_LABELS + 99}`);
    const text = await metrics.registry.metrics();
    const series = text
      .split('\n')
      .filter((line) => line.startsWith('baton_tasks_enqueued_total{'));
    expect(series).toHaveLength(MAX_ENQUEUED_TYPE_LABELS + 1);
    expect(sample(text, 'baton_tasks_enqueued_total{type="t0"}')).toBe(2);
    expect(
      sample(text, `baton_tasks_enqueued_total{type="t${MAX_ENQUEUED_TYPE_LABELS - 1}"}`),
    ).toBe(1);
    expect(sample(text, `baton_tasks_enqueued_total{type="${OTHER_TYPE_LABEL}"}`)).toBe(51);
    expect(text).not.toContain(`type="t${MAX_ENQUEUED_TYPE_LABELS}"`);
  });

  it('docs/metrics.md lists every metric of the node with its type and labels', () => {
    const page = readFileSync(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
    const documented = new Map<string, string>();
    for (const line of page.split('\n')) {
      const row = /^\|\s*`(baton_\w+)`\s*\|\s*(\w+)\s*\|([\w, ]*)\|/.exec(line);
      if (row) documented.set(row[1]!, `${row[2]} ${row[3]!.trim()}`);
    }
    const registered = new Map<string, string>();
    for (const metric of createMetrics().registry.getMetricsAsArray()) {
      const m = metric as unknown as { name: string; type: string; labelNames: string[] };
      registered.set(m.name, `${m.type} ${m.labelNames.join(', ')}`);
    }
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(registered));
  });

  it('keeps two nodes apart: separate registries, nothing in the global one', async () => {
    const a = createMetrics({ nodeInfo: { ...info, node: 'a' } });
    const b = createMetrics({ nodeInfo: { ...info, node: 'b' } });
    a.tasksEnqueued.inc({ type: 'email' }, 5);
    b.tasksEnqueued.inc({ type: 'email' }, 1);

    const textA = await a.registry.metrics();
    const textB = await b.registry.metrics();
    expect(sample(textA, 'baton_tasks_enqueued_total{type="email"}')).toBe(5);
    expect(sample(textB, 'baton_tasks_enqueued_total{type="email"}')).toBe(1);
    expect(textA).toContain('node="a"');
    expect(textA).not.toContain('node="b"');
    expect(globalRegistry.getSingleMetric('baton_tasks_enqueued_total')).toBeUndefined();
  });

  it('adds the default process metrics to its own registry only when asked', async () => {
    const plain = createMetrics();
    const withDefaults = createMetrics({ defaultMetrics: true });
    expect(await plain.registry.metrics()).not.toContain('process_cpu_user_seconds_total');
    expect(await withDefaults.registry.metrics()).toContain('process_cpu_user_seconds_total');
    expect(globalRegistry.getSingleMetric('process_cpu_user_seconds_total')).toBeUndefined();
  });

  it('uses a registry it is given', async () => {
    const first = createMetrics();
    expect(() => createMetrics({ registry: first.registry })).toThrow(/already been registered/);
  });
});

describe('baton_tasks gauge and its count cache', () => {
  it('runs one count query for concurrent scrapes and reuses it within the TTL', async () => {
    let clock = 0;
    const metrics = createMetrics({ taskCountsTtlMs: 5_000, now: () => clock });
    let calls = 0;
    let running = 0;
    let maxRunning = 0;
    let pending = deferred<TaskCounts>();
    metrics.setTaskCountsSource(async () => {
      calls += 1;
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      try {
        return await pending.promise;
      } finally {
        running -= 1;
      }
    });

    const scrapes = [metrics.registry.metrics(), metrics.registry.metrics(), metrics.taskCounts()];
    await new Promise((r) => setImmediate(r));
    expect(calls).toBe(1);
    pending.resolve({ pending: 4 });
    const [first, second, reading] = await Promise.all(scrapes);
    expect(sample(first as string, 'baton_tasks{status="pending"}')).toBe(4);
    expect(sample(second as string, 'baton_tasks{status="pending"}')).toBe(4);
    expect(reading).toEqual({ counts: { pending: 4 }, error: undefined });

    clock = 4_999;
    await metrics.registry.metrics();
    expect(calls).toBe(1);

    clock = 5_000;
    pending = deferred<TaskCounts>();
    const refreshed = metrics.registry.metrics();
    await new Promise((r) => setImmediate(r));
    pending.resolve({ pending: 1, running: 2 });
    const text = await refreshed;
    expect(calls).toBe(2);
    expect(maxRunning).toBe(1);
    expect(sample(text, 'baton_tasks{status="pending"}')).toBe(1);
    expect(sample(text, 'baton_tasks{status="running"}')).toBe(2);
  });

  it('serves the last good counts after a failed query, counts the failure and waits a TTL before retrying', async () => {
    let clock = 0;
    const metrics = createMetrics({ taskCountsTtlMs: 1_000, now: () => clock });
    let calls = 0;
    let fail = false;
    metrics.setTaskCountsSource(async () => {
      calls += 1;
      if (fail) throw new Error('connection refused');
      return { pending: 9 };
    });
    await metrics.registry.metrics();

    fail = true;
    clock = 1_000;
    const text = await metrics.registry.metrics();
    expect(calls).toBe(2);
    expect(sample(text, 'baton_tasks{status="pending"}')).toBe(9);
    expect(sample(text, 'baton_task_counts_failures_total')).toBe(1);
    const reading = await metrics.taskCounts();
    expect(reading.counts).toEqual({ pending: 9 });
    expect(reading.error).toBeInstanceOf(Error);

    clock = 1_500;
    await metrics.registry.metrics();
    expect(calls).toBe(2);

    fail = false;
    clock = 2_000;
    await metrics.registry.metrics();
    expect(calls).toBe(3);
    expect((await metrics.taskCounts()).error).toBeUndefined();
  });

  it('reports no task counts without a source, and forgets them when the source is removed', async () => {
    const metrics = createMetrics();
    expect(await metrics.registry.metrics()).not.toMatch(/^baton_tasks\{/m);
    metrics.setTaskCountsSource(() => Promise.resolve({ pending: 1 }));
    expect(await metrics.registry.metrics()).toMatch(/^baton_tasks\{status="pending"\} 1$/m);
    metrics.setTaskCountsSource(undefined);
    expect(await metrics.registry.metrics()).not.toMatch(/^baton_tasks\{/m);
  });

  it('rejects a negative TTL, naming the option', () => {
    expect(() => createMetrics({ taskCountsTtlMs: -1 })).toThrow(ObservabilityConfigError);
    expect(() => createMetrics({ taskCountsTtlMs: -1 })).toThrow(/metrics\.taskCountsTtlMs/);
  });
});
