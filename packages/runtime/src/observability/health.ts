/**
 * The health model of a node, after seed 004: the database, the bus and the
 * worker loop are checked separately and reported side by side.
 *
 * - **database**: a `select 1` through an injected probe, under a timeout.
 * - **bus**: the adapter's own connection status.
 * - **worker**: the {@link LoopMonitor}, told by the worker loop when it made
 *   progress, when it is idle by choice and when it has work pending. A loop
 *   with work pending that made no progress for `stallThresholdMs` is
 *   stalled, which is what "alive" guards against.
 *
 * Probes are plain functions, so this module knows neither the store nor the
 * bus (and imports no driver).
 */
import { requireNumber } from './errors.js';

/** `ok`: all checks pass; `degraded`: a non-critical check fails; `down`: a critical one fails. */
export type HealthStatus = 'ok' | 'degraded' | 'down';

/** The name of a check in {@link HealthReport.checks}. */
export type HealthCheckName = 'database' | 'bus' | 'worker';

export interface DatabaseCheck {
  readonly ok: boolean;
  /** Round trip of the probe, in milliseconds, when it answered. */
  readonly latencyMs?: number;
  /** Why the probe failed (`code: message`, or a timeout). */
  readonly error?: string;
}

export interface BusCheck {
  readonly ok: boolean;
  /** The adapter, e.g. `nats` or `postgres`. */
  readonly kind: string;
  readonly connected: boolean;
  readonly reconnects?: number;
}

export interface WorkerCheck {
  readonly ok: boolean;
  /** Time since the loop last made progress (or became busy after an idle spell). */
  readonly lastProgressAgoMs: number;
  /** True while the loop is idle by choice. */
  readonly idle: boolean;
}

/** What `GET /health` returns. */
export interface HealthReport {
  readonly status: HealthStatus;
  readonly checks: {
    readonly database: DatabaseCheck;
    readonly bus: BusCheck;
    readonly worker: WorkerCheck;
  };
  readonly nodeId: string;
  /** Seconds since the health check was created (the node started). */
  readonly uptimeS: number;
}

/** Options of {@link LoopMonitor}. */
export interface LoopMonitorOptions {
  /**
   * A loop with work pending that made no progress for this long is stalled.
   * @default 30000
   */
  readonly stallThresholdMs?: number;
  /**
   * An idle loop that has not reported anything (not even `idle()` from its
   * fallback poll) for this long is considered dead. Set it to a few poll
   * intervals; the default trusts `idle()` until the next report.
   * @default Infinity
   */
  readonly idleSilenceMs?: number;
  /**
   * Monotonic clock in milliseconds; tests inject their own.
   * @default performance.now
   */
  readonly now?: () => number;
}

/**
 * Watches the worker loop. The loop calls {@link progress} whenever it did
 * work (claimed, completed, extended a lease), {@link idle} when it waits
 * by choice (nothing to claim, or every slot full of healthy handlers), and
 * {@link busy} when it has work pending. The monitor starts busy, so a loop
 * that never reports is stalled after the threshold.
 *
 * @example
 * const loop = new LoopMonitor({ stallThresholdMs: 30_000 });
 * // in the worker loop:
 * const claimed = await claim();
 * if (claimed.length > 0) loop.progress(); else loop.idle();
 */
export class LoopMonitor {
  readonly stallThresholdMs: number;
  readonly idleSilenceMs: number;
  readonly #now: () => number;
  #idle = false;
  /** Last progress, or the moment the loop went from idle to busy. */
  #activeSince: number;
  #lastReportAt: number;

  constructor(options: LoopMonitorOptions = {}) {
    this.stallThresholdMs = requireNumber(
      'health.stallThresholdMs',
      options.stallThresholdMs ?? 30_000,
      1,
    );
    const silence = options.idleSilenceMs ?? Infinity;
    this.idleSilenceMs =
      silence === Infinity ? Infinity : requireNumber('health.idleSilenceMs', silence, 1);
    this.#now = options.now ?? (() => performance.now());
    this.#activeSince = this.#now();
    this.#lastReportAt = this.#activeSince;
  }

  /** The loop did work. */
  progress(): void {
    const now = this.#now();
    this.#idle = false;
    this.#activeSince = now;
    this.#lastReportAt = now;
  }

  /** The loop is idle by choice. */
  idle(): void {
    this.#idle = true;
    this.#lastReportAt = this.#now();
  }

  /**
   * The loop has work pending. Leaving idle starts the stall clock now;
   * staying busy does not reset it (only {@link progress} does).
   */
  busy(): void {
    const now = this.#now();
    if (this.#idle) this.#activeSince = now;
    this.#idle = false;
    this.#lastReportAt = now;
  }

  /** The worker check as of now. */
  check(): WorkerCheck {
    const now = this.#now();
    const lastProgressAgoMs = Math.max(0, Math.round(now - this.#activeSince));
    const ok = this.#idle
      ? now - this.#lastReportAt <= this.idleSilenceMs
      : lastProgressAgoMs <= this.stallThresholdMs;
    return { ok, lastProgressAgoMs, idle: this.#idle };
  }
}

/**
 * Runs `select 1` (or the like) and resolves when the database answered.
 * It should give up when `signal` aborts (the health timeout).
 */
export type DatabaseProbe = (signal: AbortSignal) => Promise<unknown>;

/** What the bus probe returns; the bus adapter's `status()` fits. */
export interface BusProbeResult {
  readonly kind: string;
  readonly connected: boolean;
  readonly reconnects?: number;
  readonly closed?: boolean;
}

/** Options of {@link createHealthCheck}. */
export interface HealthCheckOptions {
  readonly nodeId: string;
  readonly loop: LoopMonitor;
  readonly database: DatabaseProbe;
  readonly bus: () => BusProbeResult;
  /**
   * How long the database probe may take before it counts as failed, in milliseconds.
   * @default 2000
   */
  readonly databaseTimeoutMs?: number;
  /**
   * Checks whose failure makes the node `down` (HTTP 503); the failure of
   * any other check makes it `degraded` (still 200). The default follows
   * "alive while the worker loop makes progress": a database outage shows
   * up as a stalled loop once work is pending, and the bus only carries hints.
   * @default ['worker']
   */
  readonly critical?: readonly HealthCheckName[];
  /**
   * Monotonic clock in milliseconds, for latency and uptime.
   * @default performance.now
   */
  readonly now?: () => number;
}

/** Formats a probe failure as `code: message` for the report. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && code !== '' ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

/**
 * Builds the node's health check: a function that probes each part and
 * returns a {@link HealthReport}. Concurrent calls share one database probe.
 *
 * @example
 * const health = createHealthCheck({
 *   nodeId, loop,
 *   database: () => store.pool.query('select 1'),
 *   bus: () => bus.status(),
 * });
 * const report = await health();
 */
export function createHealthCheck(options: HealthCheckOptions): () => Promise<HealthReport> {
  const timeoutMs = requireNumber(
    'health.databaseTimeoutMs',
    options.databaseTimeoutMs ?? 2_000,
    1,
  );
  const critical = new Set<HealthCheckName>(options.critical ?? ['worker']);
  const now = options.now ?? (() => performance.now());
  const startedAt = now();
  let probing: Promise<DatabaseCheck> | undefined;

  const probeDatabase = async (): Promise<DatabaseCheck> => {
    const started = now();
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new Error(`no answer within ${timeoutMs} ms`);
        controller.abort(error);
        reject(error);
      }, timeoutMs);
    });
    try {
      await Promise.race([options.database(controller.signal), timeout]);
      return { ok: true, latencyMs: Math.round((now() - started) * 1000) / 1000 };
    } catch (error) {
      return { ok: false, error: describeError(error) };
    } finally {
      clearTimeout(timer);
    }
  };

  const checkBus = (): BusCheck => {
    try {
      const s = options.bus();
      return {
        ok: s.connected && s.closed !== true,
        kind: s.kind,
        connected: s.connected,
        ...(s.reconnects !== undefined && { reconnects: s.reconnects }),
      };
    } catch {
      return { ok: false, kind: 'unknown', connected: false };
    }
  };

  return async () => {
    probing ??= probeDatabase().finally(() => {
      probing = undefined;
    });
    const database = await probing;
    const checks = { database, bus: checkBus(), worker: options.loop.check() };
    let status: HealthStatus = 'ok';
    for (const name of ['database', 'bus', 'worker'] as const) {
      if (checks[name].ok) continue;
      if (critical.has(name)) {
        status = 'down';
        break;
      }
      status = 'degraded';
    }
    const uptimeS = Math.floor((now() - startedAt) / 1000);
    return { status, checks, nodeId: options.nodeId, uptimeS };
  };
}
