/**
 * A cache in front of the runtime's task-count query, so that scraping
 * `/metrics` (several Prometheus servers, a dashboard, a curl loop) never
 * hammers PostgreSQL: counts are reused for `ttlMs`, and at most one count
 * query runs at a time; callers arriving while it runs share its result.
 */
import { requireNumber } from './errors.js';

/**
 * Counts of tasks by status (`pending`, `running`, ...), as the runtime's
 * store reports them. A status absent from the record is not reported.
 */
export type TaskCounts = Readonly<Record<string, number>>;

/** The runtime's count query (e.g. `store.tasks.counts()`). */
export type TaskCountsSource = () => Promise<TaskCounts>;

/** Options of {@link TaskCountsCache}. */
export interface TaskCountsCacheOptions {
  /**
   * How long a result (or a failure) is reused before the source is asked
   * again, in milliseconds.
   * @default 5000
   */
  readonly ttlMs?: number;
  /**
   * Monotonic clock in milliseconds; tests inject their own.
   * @default performance.now
   */
  readonly now?: () => number;
}

/** What {@link TaskCountsCache.get} knows. */
export interface TaskCountsReading {
  /** The last counts read successfully, or `undefined` if none yet. */
  readonly counts: TaskCounts | undefined;
  /** The error of the last query, when it failed (then `counts` is the older value). */
  readonly error: unknown;
}

/**
 * Caches the result of a {@link TaskCountsSource}.
 *
 * After a failure the last good counts are served and the source is not
 * asked again before `ttlMs` either, so a database outage does not turn
 * every scrape into another failing query.
 *
 * @example
 * const cache = new TaskCountsCache({ ttlMs: 5_000 });
 * cache.setSource(() => store.tasks.counts());
 * const { counts } = await cache.get();
 */
export class TaskCountsCache {
  readonly #ttlMs: number;
  readonly #now: () => number;
  #source: TaskCountsSource | undefined;
  #generation = 0;
  #readAt: number | undefined;
  #counts: TaskCounts | undefined;
  #error: unknown;
  #inflight: Promise<TaskCountsReading> | undefined;
  #queries = 0;

  constructor(options: TaskCountsCacheOptions = {}) {
    this.#ttlMs = requireNumber('metrics.taskCountsTtlMs', options.ttlMs ?? 5_000, 0);
    this.#now = options.now ?? (() => performance.now());
  }

  /** Installs (or, with `undefined`, removes) the source and forgets cached counts. */
  setSource(source: TaskCountsSource | undefined): void {
    this.#source = source;
    this.#generation += 1;
    this.#readAt = undefined;
    this.#counts = undefined;
    this.#error = undefined;
    this.#inflight = undefined;
  }

  /** How many times the source was called since the cache was created. */
  get queries(): number {
    return this.#queries;
  }

  /**
   * The cached counts while they are fresh; otherwise runs the source (or
   * joins the query already running). Never rejects: a failure is returned
   * in {@link TaskCountsReading.error}.
   */
  async get(): Promise<TaskCountsReading> {
    const source = this.#source;
    if (source === undefined) return { counts: undefined, error: undefined };
    if (this.#readAt !== undefined && this.#now() - this.#readAt < this.#ttlMs) {
      return { counts: this.#counts, error: this.#error };
    }
    this.#inflight ??= this.#query(source, this.#generation);
    return this.#inflight;
  }

  async #query(source: TaskCountsSource, generation: number): Promise<TaskCountsReading> {
    this.#queries += 1;
    let counts: TaskCounts | undefined;
    let error: unknown;
    try {
      counts = await source();
    } catch (caught) {
      error = caught ?? new Error('task count query failed');
    }
    // A source replaced while this query ran must not see its old result cached.
    if (generation !== this.#generation) return { counts, error };
    this.#readAt = this.#now();
    if (error === undefined) this.#counts = counts;
    this.#error = error;
    this.#inflight = undefined;
    return { counts: this.#counts, error };
  }
}
