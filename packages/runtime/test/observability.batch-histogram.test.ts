import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BatchHistogram } from '../src/observability/batch-histogram.js';

const buckets = [0.001, 0.01, 0.1, 1];
const values = [0.0005, 0.001, 0.002, 0.05, 0.05, 0.7, 3, 12];

/** Two histograms fed the same observations, each in its own registry. */
function pair() {
  const ours = new Registry();
  const theirs = new Registry();
  const options = {
    name: 'h',
    help: 'help text',
    labelNames: ['type', 'status'] as ('type' | 'status')[],
    buckets,
  };
  const batch = new BatchHistogram({ ...options, registers: [ours] });
  const reference = new Histogram({ ...options, registers: [theirs] });
  return { ours, theirs, batch, reference };
}

describe('BatchHistogram', () => {
  it("exposes exactly what prom-client's Histogram exposes for the same observations", async () => {
    const { ours, theirs, batch, reference } = pair();
    const email = batch.series({ type: 'email', status: 'completed' });
    const report = batch.series({ type: 'report', status: 'retry' });
    for (const v of values) {
      email.observe(v);
      reference.observe({ type: 'email', status: 'completed' }, v);
    }
    report.observe(0.2);
    reference.observe({ type: 'report', status: 'retry' }, 0.2);

    expect(await ours.metrics()).toBe(await theirs.metrics());
    // The same JSON, but for prom-client's empty exemplar fields.
    const withoutExemplars = (metrics: Awaited<ReturnType<Registry['getMetricsAsJSON']>>) =>
      metrics.map((m) => ({
        ...m,
        values: m.values.map((v) => {
          const { exemplar: _, ...rest } = v as typeof v & { exemplar?: unknown };
          return rest;
        }),
      }));
    expect(await ours.getMetricsAsJSON()).toEqual(
      withoutExemplars(await theirs.getMetricsAsJSON()),
    );
  });

  it('gives the same series for the same labels, and a reset zeroes the series callers keep', async () => {
    const { ours, batch } = pair();
    const kept = batch.series({ type: 'email', status: 'completed' });
    expect(batch.series({ status: 'completed', type: 'email' })).toBe(kept);
    kept.observe(0.05);
    ours.resetMetrics();
    kept.observe(0.5);
    const text = await ours.metrics();
    expect(text).toContain('h_count{type="email",status="completed"} 1');
    expect(text).toContain('h_bucket{le="0.1",type="email",status="completed"} 0');
    expect(text).toContain('h_bucket{le="1",type="email",status="completed"} 1');
  });

  it('refuses buckets out of order and a missing label', () => {
    expect(
      () =>
        new BatchHistogram({
          name: 'x',
          help: 'x',
          labelNames: [],
          buckets: [1, 1],
          registers: [],
        }),
    ).toThrow(/ascending/);
    const h = new BatchHistogram<'type'>({
      name: 'y',
      help: 'y',
      labelNames: ['type'],
      buckets,
      registers: [],
    });
    h.series({ type: '' });
    // Missing is not the empty string: no series is found for it.
    expect(() => h.series({} as { type: string })).toThrow(/label type missing/);
  });

  it('leaves out values that are not finite, exposes only its own labels, and keeps le for the buckets', async () => {
    const registry = new Registry();
    const h = new BatchHistogram<'type'>({
      name: 'z',
      help: 'z',
      labelNames: ['type'],
      buckets,
      registers: [registry],
    });
    const series = h.series({ type: 'a', extra: 'x' } as { type: string });
    for (const v of [Number.NaN, Number.POSITIVE_INFINITY, 0.05]) series.observe(v);
    const text = await registry.metrics();
    expect(text).toContain('z_count{type="a"} 1');
    expect(text).toContain('z_sum{type="a"} 0.05');
    expect(text).not.toContain('extra');
    expect(
      () =>
        new BatchHistogram({ name: 'w', help: 'w', labelNames: ['le'], buckets, registers: [] }),
    ).toThrow(/le is reserved/);
  });
});
