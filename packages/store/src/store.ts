import pg from 'pg';
import { DEFAULT_BACKOFF } from './backoff.js';
import { InvalidArgumentError } from './errors.js';
import { migrate, type MigrateResult } from './migrate.js';
import { quoteSchema } from './schema.js';
import { LeadershipStore } from './leadership.js';
import { NodeStore } from './nodes.js';
import { ServiceRunStore } from './services.js';
import { TaskStore } from './tasks.js';
import type { BackoffPolicy } from './types.js';

export interface StoreOptions {
  /** An existing pool (the store does not close it), or… */
  readonly pool?: pg.Pool;
  /** …the settings of a pool the store creates and owns (credentials, TLS, size). */
  readonly connection?: pg.PoolConfig;
  /** @default 'baton' */
  readonly schema?: string;
  /** Largest payload, as serialised JSON. @default 262144 (256 KiB) */
  readonly maxPayloadBytes?: number;
  /** @default 5 */
  readonly defaultMaxAttempts?: number;
  readonly backoff?: Partial<BackoffPolicy>;
  /** Source of randomness for jitter (tests pass a seeded one). @default Math.random */
  readonly random?: () => number;
}

export interface Store extends AsyncDisposable {
  readonly schema: string;
  readonly pool: pg.Pool;
  readonly tasks: TaskStore;
  readonly nodes: NodeStore;
  readonly leadership: LeadershipStore;
  readonly serviceRuns: ServiceRunStore;
  /** Applies pending migrations (safe to call from many nodes at once). */
  migrate(): Promise<MigrateResult>;
  /** PostgreSQL's clock: every lease, heartbeat and due time is measured on it. */
  now(): Promise<Date>;
  close(): Promise<void>;
}

function positiveInt(field: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(field, 'must be a positive integer', value);
  }
  return value;
}

/** Opens the store: validates options once and prepares the query modules. */
export function createStore(options: StoreOptions): Store {
  const schema = options.schema ?? 'baton';
  const quoted = quoteSchema(schema);
  if (!options.pool && !options.connection) {
    throw new InvalidArgumentError('connection', 'give a pool or connection settings');
  }
  const backoff: BackoffPolicy = { ...DEFAULT_BACKOFF, ...options.backoff };
  positiveInt('backoff.baseMs', backoff.baseMs);
  positiveInt('backoff.maxMs', backoff.maxMs);
  if (backoff.maxMs < backoff.baseMs) {
    throw new InvalidArgumentError(
      'backoff.maxMs',
      'must not be smaller than backoff.baseMs',
      backoff.maxMs,
    );
  }
  const maxPayloadBytes = positiveInt('maxPayloadBytes', options.maxPayloadBytes ?? 256 * 1024);
  const defaultMaxAttempts = positiveInt('defaultMaxAttempts', options.defaultMaxAttempts ?? 5);
  const owned = !options.pool;
  const pool = options.pool ?? new pg.Pool(options.connection);
  const tasks = new TaskStore(pool, quoted, schema, {
    maxPayloadBytes,
    defaultMaxAttempts,
    backoff,
    ...(options.random ? { random: options.random } : {}),
  });
  const nodes = new NodeStore(pool, quoted);
  const leadership = new LeadershipStore(pool, quoted, tasks.stats);
  const serviceRuns = new ServiceRunStore(pool, quoted, leadership);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    if (owned) await pool.end();
  };
  return {
    schema,
    pool,
    tasks,
    nodes,
    leadership,
    serviceRuns,
    migrate: () => migrate(pool, schema),
    now: async () => (await pool.query<{ now: Date }>('select now() as now')).rows[0]!.now,
    close,
    [Symbol.asyncDispose]: close,
  };
}
