/**
 * Options of the PostgreSQL LISTEN/NOTIFY adapter, validated and compiled
 * once: defaults applied, durations as `...Ms`, conflicting options refused
 * with an {@link InvalidArgumentError} that names the option
 * (`postgresBus.connectionString`, `postgresBus.channelPrefix`, ...).
 */
import type pg from 'pg';
import { InvalidArgumentError, quoteSchema, validateChannel } from '@baton/store';

/** Longest {@link PostgresBusOptions.channelPrefix}: room is left for the root's hash. */
export const MAX_CHANNEL_PREFIX = 40;
/** Longest {@link PostgresBusOptions.applicationName}, as PostgreSQL keeps it (63 bytes). */
export const MAX_APPLICATION_NAME = 63;
const LISTENER_SUFFIX = '-listener';

/**
 * Options of `createPostgresBus`. Give at most one of `connectionString` and
 * `connection`; without either, `pool` is required and the LISTEN connection
 * uses the pool's connection settings.
 */
export interface PostgresBusOptions {
  /** e.g. `postgres://baton:secret@127.0.0.1:5432/baton`. Excludes `connection`. */
  readonly connectionString?: string;
  /** node-postgres settings (host, user, password, ssl, ...). Excludes `connectionString`. */
  readonly connection?: pg.PoolConfig;
  /**
   * A pool to send NOTIFYs and read stored bodies through, e.g. the store's;
   * `close()` leaves it open. Without it the bus opens (and ends) its own pool
   * of `poolSize` connections. The LISTEN connection is always the bus's own.
   */
  readonly pool?: pg.Pool;
  /**
   * Connections of the bus's own pool (ignored with `pool`).
   * @default 4
   */
  readonly poolSize?: number;
  /**
   * Schema holding the bus tables (store migration 000002).
   * @default 'baton'
   */
  readonly schema?: string;
  /**
   * First part of every channel name: a lower-case identifier of at most
   * {@link MAX_CHANNEL_PREFIX} bytes. Buses with different prefixes never hear
   * each other on the same database.
   * @default 'baton_bus'
   */
  readonly channelPrefix?: string;
  /**
   * `application_name` of the bus's connections, as shown by
   * `pg_stat_activity`. The LISTEN connection's is `<name>-listener` (the
   * name cut to 54 characters first, so the suffix fits in 63 bytes).
   * @default 'baton-bus'
   */
  readonly applicationName?: string;
  /**
   * Largest message body, in bytes. Bodies whose envelope does not fit one
   * NOTIFY (about 5.9 KB) travel by reference through `bus_payloads`. At
   * most 256 MiB; the bus is for hints, keep bodies small.
   * @default 1048576
   */
  readonly maxPayloadBytes?: number;
  /**
   * How long stored bodies and queue-group claims are kept, in milliseconds.
   * A receiver later than this misses a stored body; a queue member later than
   * this may deliver a message twice (the bus allows duplicates).
   * @default 60000
   */
  readonly retentionMs?: number;
  /**
   * First pause before reconnecting the LISTEN connection, in milliseconds;
   * it doubles on each failed attempt (with jitter) up to `reconnectMaxDelayMs`.
   * @default 100
   */
  readonly reconnectDelayMs?: number;
  /** @default 5000 */
  readonly reconnectMaxDelayMs?: number;
  /**
   * Timeout of one connection attempt, and of a listener ping, in milliseconds.
   * @default 10000
   */
  readonly connectTimeoutMs?: number;
  /**
   * Interval of pings on the LISTEN connection, in milliseconds: an unanswered
   * ping counts as a lost connection (a silent network failure).
   * @default 15000
   */
  readonly pingIntervalMs?: number;
  /**
   * How long `close()` waits for handlers already running, in milliseconds.
   * @default 5000
   */
  readonly closeGraceMs?: number;
  /**
   * Database queries that receiving may run at once (a claim per queue-group
   * message, a read per body stored by reference).
   * @default 4
   */
  readonly maxConcurrentReads?: number;
  /**
   * Received messages that may wait for one of those; beyond, a message is
   * dropped unread and counted in `status().dropped`.
   * @default 10000
   */
  readonly maxQueuedReads?: number;
}

/** The options after {@link compilePostgresBusOptions}: frozen, every default applied. */
export interface CompiledPostgresBusOptions {
  /** Settings of the LISTEN connection. */
  readonly listener: Readonly<pg.ClientConfig>;
  /** Settings of the bus's own pool; `undefined` when `pool` was given. */
  readonly poolConfig: Readonly<pg.PoolConfig> | undefined;
  readonly pool: pg.Pool | undefined;
  readonly schema: string;
  readonly quotedSchema: string;
  readonly channelPrefix: string;
  readonly applicationName: string;
  readonly maxPayloadBytes: number;
  readonly retentionMs: number;
  readonly reconnectDelayMs: number;
  readonly reconnectMaxDelayMs: number;
  readonly connectTimeoutMs: number;
  readonly pingIntervalMs: number;
  readonly closeGraceMs: number;
  readonly maxConcurrentReads: number;
  readonly maxQueuedReads: number;
}

const field = (name: string): string => `postgresBus.${name}`;

/** Settings of one pool that are not about the pool itself: what a single client needs. */
function clientSettingsOf(pool: pg.Pool | undefined): pg.ClientConfig {
  if (pool === undefined) return {};
  if (typeof pool !== 'object' || pool === null || typeof pool.query !== 'function') {
    throw new InvalidArgumentError(field('pool'), 'must be a pg.Pool', pool);
  }
  const {
    max: _max,
    min: _min,
    idleTimeoutMillis: _idle,
    maxUses: _uses,
    maxLifetimeSeconds: _lifetime,
    allowExitOnIdle: _exit,
    log: _log,
    Client: _client,
    Promise: _promise,
    ...client
  } = (pool.options ?? {}) as pg.PoolOptions & { maxLifetimeSeconds?: number };
  return client;
}

/** Longest duration a timer takes (setTimeout's limit, about 24.8 days). */
const MAX_DURATION_MS = 2 ** 31 - 1;
/** Largest `maxPayloadBytes`: bodies travel as bytea parameters in hex text. */
const MAX_PAYLOAD_LIMIT = 256 * 1024 * 1024;

function positive(
  name: string,
  value: number | undefined,
  fallback: number,
  max = MAX_DURATION_MS,
): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0 || value > max) {
    throw new InvalidArgumentError(field(name), `must be an integer from 1 to ${max}`, value);
  }
  return value;
}

/**
 * Validates and compiles the options once. Throws {@link InvalidArgumentError}
 * naming the option (`postgresBus.connectionString`, `postgresBus.schema`, ...).
 *
 * @example
 * const compiled = compilePostgresBusOptions({ connectionString: process.env.DATABASE_URL });
 */
export function compilePostgresBusOptions(options: PostgresBusOptions): CompiledPostgresBusOptions {
  const { connectionString, connection } = options;
  if (connectionString !== undefined && connection !== undefined) {
    throw new InvalidArgumentError(
      field('connection'),
      'excludes postgresBus.connectionString: give one or the other',
    );
  }
  const pool = options.pool;
  if (connectionString === undefined && connection === undefined && pool === undefined) {
    throw new InvalidArgumentError(
      field('connectionString'),
      'is required (or postgresBus.connection, or postgresBus.pool to copy settings from)',
    );
  }
  if (
    connectionString !== undefined &&
    (typeof connectionString !== 'string' || connectionString.length === 0)
  ) {
    throw new InvalidArgumentError(
      field('connectionString'),
      'must be a non-empty string',
      connectionString,
    );
  }
  if (connection !== undefined && (typeof connection !== 'object' || connection === null)) {
    throw new InvalidArgumentError(field('connection'), 'must be an object', connection);
  }
  const schema = options.schema ?? 'baton';
  let quotedSchema: string;
  try {
    quotedSchema = quoteSchema(schema);
  } catch {
    throw new InvalidArgumentError(
      field('schema'),
      'must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)',
      schema,
    );
  }
  const channelPrefix = options.channelPrefix ?? 'baton_bus';
  validateChannel(channelPrefix, field('channelPrefix'));
  if (channelPrefix.length > MAX_CHANNEL_PREFIX) {
    throw new InvalidArgumentError(
      field('channelPrefix'),
      `must be at most ${MAX_CHANNEL_PREFIX} characters (channel names are limited to 63 bytes)`,
      channelPrefix,
    );
  }
  const applicationName = options.applicationName ?? 'baton-bus';
  if (
    typeof applicationName !== 'string' ||
    !/^[\x20-\x7e]+$/.test(applicationName) ||
    applicationName.length > MAX_APPLICATION_NAME
  ) {
    throw new InvalidArgumentError(
      field('applicationName'),
      `must be 1 to ${MAX_APPLICATION_NAME} printable ASCII characters`,
      applicationName,
    );
  }
  const reconnectDelayMs = positive('reconnectDelayMs', options.reconnectDelayMs, 100);
  const reconnectMaxDelayMs = positive('reconnectMaxDelayMs', options.reconnectMaxDelayMs, 5000);
  if (reconnectMaxDelayMs < reconnectDelayMs) {
    throw new InvalidArgumentError(
      field('reconnectMaxDelayMs'),
      'must not be smaller than postgresBus.reconnectDelayMs',
      reconnectMaxDelayMs,
    );
  }
  const connectTimeoutMs = positive('connectTimeoutMs', options.connectTimeoutMs, 10_000);
  const base: pg.ClientConfig = {
    ...(connectionString === undefined && connection === undefined && clientSettingsOf(pool)),
    ...(connection ?? {}),
    ...(connectionString !== undefined && { connectionString }),
    connectionTimeoutMillis: connectTimeoutMs,
    keepAlive: true,
  };
  const poolSize = positive('poolSize', options.poolSize, 4, 1000);
  return Object.freeze({
    listener: Object.freeze({
      ...base,
      application_name: `${applicationName.slice(0, MAX_APPLICATION_NAME - LISTENER_SUFFIX.length)}${LISTENER_SUFFIX}`,
    }),
    poolConfig:
      pool === undefined
        ? Object.freeze({
            ...connection,
            ...base,
            application_name: applicationName,
            max: poolSize,
          })
        : undefined,
    pool,
    schema,
    quotedSchema,
    channelPrefix,
    applicationName,
    maxPayloadBytes: positive(
      'maxPayloadBytes',
      options.maxPayloadBytes,
      1024 * 1024,
      MAX_PAYLOAD_LIMIT,
    ),
    retentionMs: positive('retentionMs', options.retentionMs, 60_000),
    reconnectDelayMs,
    reconnectMaxDelayMs,
    connectTimeoutMs,
    pingIntervalMs: positive('pingIntervalMs', options.pingIntervalMs, 15_000),
    closeGraceMs: positive('closeGraceMs', options.closeGraceMs, 5000),
    maxConcurrentReads: positive('maxConcurrentReads', options.maxConcurrentReads, 4, 1000),
    maxQueuedReads: positive('maxQueuedReads', options.maxQueuedReads, 10_000, 10_000_000),
  });
}
