/**
 * A histogram for the worker's hot path. prom-client's Histogram validates
 * and hashes its labels on every observation, even through a label child:
 * with a batch of 500 completions that was most of the cost of recording
 * them. Here a series is looked up once per batch and an observation is a
 * bucket search and three additions.
 *
 * It is registered in, and read through, prom-client's registry like any
 * histogram: the same exposition (`_bucket` with `le` first, `_sum`,
 * `_count`) and the `sum` aggregator for cluster registries. Unlike
 * prom-client's, a series is listed (at zero) from its first lookup, and a
 * reset zeroes the series instead of removing them, since callers keep them.
 */
import type { Metric, Registry } from 'prom-client';

/** One label set's counts. */
export interface HistogramSeries {
  /** Counts `value`; a value that is not a finite number is left out (prom-client would throw). */
  observe(value: number): void;
}

interface Series<L extends string> extends HistogramSeries {
  readonly labels: Readonly<Record<L, string>>;
  /** Observations per bucket, not cumulative; the last one is +Inf. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

interface Sample {
  value: number;
  metricName: string;
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
}

export interface BatchHistogramOptions<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  /** Upper bounds, ascending. */
  readonly buckets: readonly number[];
  readonly registers: readonly Registry[];
}

export class BatchHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames: readonly L[];
  readonly #bounds: readonly number[];
  readonly #series = new Map<string, Series<L>>();

  constructor(options: BatchHistogramOptions<L>) {
    const { buckets } = options;
    if (buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))) {
      throw new TypeError(`${options.name}: buckets must be finite and ascending`);
    }
    if (options.labelNames.includes('le' as L)) {
      throw new TypeError(`${options.name}: le is reserved for the buckets`);
    }
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    this.#bounds = [...buckets];
    // The registry's formatting needs only what prom-client's own metrics expose.
    for (const registry of options.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The series of `labels` (made on first use): keep it and observe through it. */
  series(labels: Readonly<Record<L, string>>): HistogramSeries {
    const values = this.labelNames.map((n) => {
      const value = labels[n];
      if (typeof value !== 'string') throw new TypeError(`${this.name}: label ${n} missing`);
      return value;
    });
    const key = values.join('\u0000');
    let series = this.#series.get(key);
    if (!series) {
      const bounds = this.#bounds;
      const s: Series<L> = {
        labels: Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]])) as Record<
          L,
          string
        >,
        counts: new Float64Array(bounds.length + 1),
        sum: 0,
        count: 0,
        observe(value: number) {
          if (!Number.isFinite(value)) return;
          s.counts[bucketOf(bounds, value)]! += 1;
          s.sum += value;
          s.count += 1;
        },
      };
      series = s;
      this.#series.set(key, series);
    }
    return series;
  }

  /** The samples with each series' labels apart (what the registry formats). */
  getForPromString() {
    const values: Sample[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.#series.values()) {
      const shared = s.labels as Record<string, string>;
      let cumulative = 0;
      this.#bounds.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({
          value: cumulative,
          metricName: bucket,
          labels: { le },
          sharedLabels: shared,
        });
      });
      values.push(
        { value: s.count, metricName: bucket, labels: { le: '+Inf' }, sharedLabels: shared },
        { value: s.sum, metricName: `${this.name}_sum`, labels: {}, sharedLabels: shared },
        { value: s.count, metricName: `${this.name}_count`, labels: {}, sharedLabels: shared },
      );
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    };
  }

  /** The same samples with their labels merged (what JSON readers and cluster aggregation use). */
  get() {
    const data = this.getForPromString();
    return Promise.resolve({
      ...data,
      values: data.values.map(({ sharedLabels, ...v }) => ({
        ...v,
        labels: { ...v.labels, ...sharedLabels },
      })),
    });
  }

  /** Zeroes every series (the ones kept by callers stay live). */
  reset(): void {
    for (const s of this.#series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}

/** The index of the first bound >= value (bounds.length for +Inf). */
function bucketOf(bounds: readonly number[], value: number): number {
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (value <= bounds[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
