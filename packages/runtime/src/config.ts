import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { BatonError, QUEUE_NAME } from '@baton/store';

/** A bad option: `option` names it (dotted path), the message says what is wrong. */
export class ConfigError extends BatonError {
  constructor(option: string, message: string, value?: unknown) {
    super('INVALID_CONFIG', `${option}: ${message}`, { option, value });
  }
  get option(): string {
    return this.fields.option as string;
  }
}

/** TLS settings for PostgreSQL and NATS: PEM text or file paths. */
export interface TlsOptions {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  /** @default true */
  readonly rejectUnauthorized?: boolean;
}

/** PostgreSQL connection. Ballerina's `databaseConfig` fields are accepted as they are. */
export interface DatabaseOptions {
  readonly url?: string;
  readonly host?: string;
  readonly port?: number;
  readonly user?: string;
  readonly password?: string;
  readonly database?: string;
  readonly ssl?: boolean | TlsOptions;
  /** Connections in the node's pool. @default 10 */
  readonly poolSize?: number;
  /** @default 'baton' */
  readonly schema?: string;
}

export interface NatsOptions {
  readonly servers: string | readonly string[];
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
  readonly tls?: TlsOptions;
  /**
   * The JetStream submission stream (`baton.<group>.js.submit.<type>`), an
   * extra way to submit beside request/reply and plain publish (which need
   * core NATS only). `'auto'`: created when the server has JetStream, else
   * the node starts without it and warns. `true`: required, the start fails
   * when the server has JetStream disabled. `false`: never created.
   * @default 'auto'
   */
  readonly jetstream?: NatsJetStream;
}

/** See {@link NatsOptions.jetstream}. */
export type NatsJetStream = 'auto' | boolean;

/** Warm backup (seed 000), with Ballerina's names. Times in seconds, decimals allowed. */
export interface WarmBackupOptions {
  readonly groupId?: string;
  /** This node's unique id. */
  readonly taskId?: string;
  /** How long the bearer's token lives without a heartbeat. @default 0.5 */
  readonly livenessCheckInterval?: number;
  /** How often every node beats (and the bearer renews its token). @default 0.1 */
  readonly heartbeatFrequency?: number;
  readonly databaseConfig?: DatabaseOptions;
}

export interface WorkerOptions {
  /** Handlers running at once on this node. @default 32 */
  readonly concurrency?: number;
  /** The queue this node works; run more nodes for more queues. @default 'default' */
  readonly queue?: string;
  /** Fallback poll when no wake-up arrives. @default 1000 */
  readonly pollIntervalMs?: number;
  /** @default 30000 */
  readonly leaseMs?: number;
  /** Default handler timeout. @default 300000 */
  readonly timeoutMs?: number;
  /** Completions are written together within this delay. @default 2 */
  readonly completionFlushMs?: number;
}

/**
 * How long finished tasks are kept, in seconds; `null` keeps them forever.
 * The token bearer deletes older ones (with their history) every `interval`.
 */
export interface RetentionOptions {
  /** @default 86400 (1 day) */
  readonly completed?: number | null;
  /** @default 604800 (7 days) */
  readonly cancelled?: number | null;
  /** @default 2592000 (30 days) */
  readonly deadLetter?: number | null;
  /** Seconds between two deletion runs. @default 60 */
  readonly interval?: number;
}

export interface NodeOptions {
  /** @default `${hostname}-${pid}-${random}` (or `warmBackup.taskId`) */
  readonly nodeId?: string;
  /** @default 'default' (or `warmBackup.groupId`) */
  readonly groupId?: string;
  readonly database: DatabaseOptions;
  /** With NATS the node uses the NATS bus; without, PostgreSQL LISTEN/NOTIFY. */
  readonly nats?: NatsOptions;
  readonly warmBackup?: WarmBackupOptions;
  readonly worker?: WorkerOptions;
  /** @default 10000 */
  readonly shutdownGraceMs?: number;
  /** `false` serves no HTTP. @default { host: '127.0.0.1', port: 0 } */
  readonly http?: false | { readonly host?: string; readonly port?: number };
  /** @default 'info' */
  readonly logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** @default 262144 */
  readonly maxPayloadBytes?: number;
  /** Expired leases are looked for this often. @default 1000 */
  readonly rescueIntervalMs?: number;
  /** How often the token bearer looks for due schedule ticks. @default 50 */
  readonly scheduleTickMs?: number;
  readonly retention?: RetentionOptions;
}

export interface CompiledConfig {
  readonly nodeId: string;
  readonly groupId: string;
  readonly database: Readonly<DatabaseOptions> & {
    readonly poolSize: number;
    readonly schema: string;
  };
  readonly nats: (NatsOptions & { readonly jetstream: NatsJetStream }) | null;
  readonly bus: 'nats' | 'postgres';
  readonly heartbeatMs: number;
  readonly livenessMs: number;
  readonly worker: Required<WorkerOptions>;
  readonly shutdownGraceMs: number;
  readonly http: false | { readonly host: string; readonly port: number };
  readonly logLevel: NonNullable<NodeOptions['logLevel']>;
  readonly maxPayloadBytes: number;
  readonly rescueIntervalMs: number;
  readonly scheduleTickMs: number;
  readonly retention: {
    readonly completedMs: number | null;
    readonly cancelledMs: number | null;
    readonly deadLetterMs: number | null;
    readonly intervalMs: number;
  };
}

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function int(option: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(option, `must be an integer between ${min} and ${max}`, value);
  }
  return value;
}

/** The longest duration a timer takes (setTimeout's limit, about 24.8 days): the actors refuse more. */
const MAX_MS = 2_147_483_647;

/** A duration in milliseconds: an integer from `min` up to what a timer takes. */
const ms = (option: string, value: unknown, min: number) => int(option, value, min, MAX_MS);

function seconds(option: string, value: unknown): number {
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < 0.001 ||
    value * 1000 > MAX_MS
  ) {
    throw new ConfigError(
      option,
      `must be a number of seconds from 0.001 to ${MAX_MS / 1000}`,
      value,
    );
  }
  return Math.round(value * 1000);
}

/** A retention in seconds (`null`: forever), as milliseconds; up to 100 years, not a timer. */
function keep(option: string, value: unknown, fallback: number): number | null {
  if (value === null) return null;
  if (value === undefined) return fallback * 1000;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0.001 || value > 3.156e9) {
    throw new ConfigError(
      option,
      'must be a number of seconds from 0.001 to 3156000000 (100 years), or null to keep forever',
      value,
    );
  }
  return Math.round(value * 1000);
}

function token(option: string, value: unknown): string {
  if (typeof value !== 'string' || !TOKEN.test(value)) {
    throw new ConfigError(option, 'must be 1 to 64 letters, digits, "_" or "-"', value);
  }
  return value;
}

function defaultNodeId(): string {
  const host = hostname()
    .replace(/[^A-Za-z0-9_-]/g, '-')
    .slice(0, 40);
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

function compileDatabase(
  option: string,
  db: DatabaseOptions | undefined,
): CompiledConfig['database'] {
  if (!db || typeof db !== 'object') throw new ConfigError(option, 'is required');
  if (!db.url && !db.host)
    throw new ConfigError(option, 'give url, or host (with port, user, database)');
  if (db.url) {
    let u: URL;
    try {
      u = new URL(db.url);
      if (!/^postgres(ql)?:$/.test(u.protocol)) throw new Error('protocol');
    } catch {
      throw new ConfigError(`${option}.url`, 'must be a postgres:// URL', db.url);
    }
    // pg lets the URL's TLS parameters win over the ssl option: one place only.
    const inUrl = [...u.searchParams.keys()].filter((k) => k.startsWith('ssl'));
    if (db.ssl !== undefined && inUrl.length > 0) {
      throw new ConfigError(
        `${option}.ssl`,
        `conflicts with ${inUrl.join(', ')} in ${option}.url (the URL's would win): give TLS in one place`,
      );
    }
  }
  if (db.port !== undefined) int(`${option}.port`, db.port, 1, 65535);
  const poolSize = int(`${option}.poolSize`, db.poolSize ?? 10, 1, 1000);
  const schema = db.schema ?? 'baton';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new ConfigError(`${option}.schema`, 'must be a lower-case SQL identifier', schema);
  }
  return Object.freeze({ ...db, poolSize, schema });
}

/**
 * Validates options once and returns a frozen config with every default
 * filled in and durations in milliseconds. Conflicting or bad options fail
 * here, at start, with a message that names the option.
 */
export function compileConfig(options: NodeOptions): CompiledConfig {
  if (!options || typeof options !== 'object')
    throw new ConfigError('options', 'must be an object');
  const wb = options.warmBackup ?? {};
  if (options.nodeId && wb.taskId && options.nodeId !== wb.taskId) {
    throw new ConfigError(
      'warmBackup.taskId',
      `conflicts with nodeId (${options.nodeId})`,
      wb.taskId,
    );
  }
  if (options.groupId && wb.groupId && options.groupId !== wb.groupId) {
    throw new ConfigError(
      'warmBackup.groupId',
      `conflicts with groupId (${options.groupId})`,
      wb.groupId,
    );
  }
  const nodeId = token(
    wb.taskId ? 'warmBackup.taskId' : 'nodeId',
    wb.taskId ?? options.nodeId ?? defaultNodeId(),
  );
  const groupId = token(
    wb.groupId ? 'warmBackup.groupId' : 'groupId',
    wb.groupId ?? options.groupId ?? 'default',
  );
  if (options.database && wb.databaseConfig) {
    throw new ConfigError(
      'warmBackup.databaseConfig',
      'give database or warmBackup.databaseConfig, not both',
    );
  }
  const database = compileDatabase(
    wb.databaseConfig ? 'warmBackup.databaseConfig' : 'database',
    wb.databaseConfig ?? options.database,
  );
  const heartbeatMs = seconds('warmBackup.heartbeatFrequency', wb.heartbeatFrequency ?? 0.1);
  const livenessMs = seconds('warmBackup.livenessCheckInterval', wb.livenessCheckInterval ?? 0.5);
  if (livenessMs < 2 * heartbeatMs) {
    throw new ConfigError(
      'warmBackup.livenessCheckInterval',
      `must be at least two heartbeats (2 x heartbeatFrequency = ${(2 * heartbeatMs) / 1000} s), or one late heartbeat would cost the token`,
      wb.livenessCheckInterval,
    );
  }
  let nats: CompiledConfig['nats'] = null;
  if (options.nats) {
    const servers: readonly string[] =
      typeof options.nats.servers === 'string' ? [options.nats.servers] : options.nats.servers;
    const serverList: unknown = servers;
    if (!Array.isArray(serverList) || servers.length === 0) {
      throw new ConfigError(
        'nats.servers',
        'must be a URL or a non-empty list of URLs',
        options.nats.servers,
      );
    }
    if (options.nats.token && options.nats.user) {
      throw new ConfigError('nats.token', 'give a token or user/pass, not both');
    }
    const jetstream = options.nats.jetstream ?? 'auto';
    if (jetstream !== 'auto' && jetstream !== true && jetstream !== false) {
      throw new ConfigError('nats.jetstream', "must be 'auto', true or false", jetstream);
    }
    nats = Object.freeze({ ...options.nats, servers: Object.freeze([...servers]), jetstream });
  }
  const w = options.worker ?? {};
  const queue = w.queue ?? 'default';
  if (typeof queue !== 'string' || !QUEUE_NAME.test(queue)) {
    throw new ConfigError(
      'worker.queue',
      'must be a queue name (letters, digits, "_", "-")',
      queue,
    );
  }
  const worker = Object.freeze({
    concurrency: int('worker.concurrency', w.concurrency ?? 32, 1, 10_000),
    queue,
    pollIntervalMs: ms('worker.pollIntervalMs', w.pollIntervalMs ?? 1000, 10),
    leaseMs: ms('worker.leaseMs', w.leaseMs ?? 30_000, 100),
    timeoutMs: ms('worker.timeoutMs', w.timeoutMs ?? 300_000, 1),
    completionFlushMs: int('worker.completionFlushMs', w.completionFlushMs ?? 2, 0, 1000),
  });
  let http: CompiledConfig['http'] = { host: '127.0.0.1', port: 0 };
  if (options.http === false) http = false;
  else if (options.http) {
    http = {
      host: options.http.host ?? '127.0.0.1',
      port: int('http.port', options.http.port ?? 0, 0, 65535),
    };
  }
  const logLevel = options.logLevel ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('logLevel', `must be one of ${LOG_LEVELS.join(', ')}`, logLevel);
  }
  return Object.freeze({
    nodeId,
    groupId,
    database,
    nats,
    bus: nats ? 'nats' : 'postgres',
    heartbeatMs,
    livenessMs,
    worker,
    shutdownGraceMs: ms('shutdownGraceMs', options.shutdownGraceMs ?? 10_000, 0),
    http,
    logLevel,
    maxPayloadBytes: int('maxPayloadBytes', options.maxPayloadBytes ?? 256 * 1024, 1),
    rescueIntervalMs: ms('rescueIntervalMs', options.rescueIntervalMs ?? 1000, 10),
    scheduleTickMs: ms('scheduleTickMs', options.scheduleTickMs ?? 50, 5),
    retention: Object.freeze({
      completedMs: keep('retention.completed', options.retention?.completed, 86_400),
      cancelledMs: keep('retention.cancelled', options.retention?.cancelled, 7 * 86_400),
      deadLetterMs: keep('retention.deadLetter', options.retention?.deadLetter, 30 * 86_400),
      intervalMs: seconds('retention.interval', options.retention?.interval ?? 60),
    }),
  });
}
