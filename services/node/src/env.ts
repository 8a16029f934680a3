/**
 * The node's environment variables: one table that parsing, the docs
 * (docs/configuration.md) and the compose-file test all read.
 */
import type { NodeOptions, TlsOptions } from '@baton/runtime';

export interface EnvVar {
  readonly name: string;
  readonly description: string;
  readonly example?: string;
}

/** The node option each variable sets: errors about an option name the variable. */
const OPTION_OF: Readonly<Record<string, string>> = {
  DATABASE_URL: 'database.url',
  BATON_DB_POOL_SIZE: 'database.poolSize',
  BATON_DB_SCHEMA: 'database.schema',
  BATON_DB_SSL: 'database.ssl',
  BATON_DB_SSL_CA_FILE: 'database.ssl.caFile',
  BATON_DB_SSL_CERT_FILE: 'database.ssl.certFile',
  BATON_DB_SSL_KEY_FILE: 'database.ssl.keyFile',
  NATS_URL: 'nats.servers',
  BATON_NATS_USER: 'nats.user',
  BATON_NATS_PASS: 'nats.pass',
  BATON_NATS_TOKEN: 'nats.token',
  BATON_NATS_TLS_CA_FILE: 'nats.tls.caFile',
  BATON_NATS_TLS_CERT_FILE: 'nats.tls.certFile',
  BATON_NATS_TLS_KEY_FILE: 'nats.tls.keyFile',
  BATON_NATS_JETSTREAM: 'nats.jetstream',
  BATON_NODE_ID: 'nodeId',
  BATON_GROUP: 'groupId',
  BATON_CONCURRENCY: 'worker.concurrency',
  BATON_QUEUE: 'worker.queue',
  BATON_POLL_INTERVAL_MS: 'worker.pollIntervalMs',
  BATON_LEASE_MS: 'worker.leaseMs',
  BATON_TASK_TIMEOUT_MS: 'worker.timeoutMs',
  BATON_HEARTBEAT_FREQUENCY: 'warmBackup.heartbeatFrequency',
  BATON_LIVENESS_CHECK_INTERVAL: 'warmBackup.livenessCheckInterval',
  BATON_SHUTDOWN_GRACE_MS: 'shutdownGraceMs',
  BATON_RETENTION_COMPLETED: 'retention.completed',
  BATON_RETENTION_CANCELLED: 'retention.cancelled',
  BATON_RETENTION_DEAD_LETTER: 'retention.deadLetter',
  BATON_RETENTION_INTERVAL: 'retention.interval',
  BATON_HTTP_HOST: 'http.host',
  BATON_HTTP_PORT: 'http.port',
  BATON_LOG_LEVEL: 'logLevel',
};

/**
 * The variable that sets node option `option` (or the nearest option above
 * it: `database.ssl` for `database.ssl.rejectUnauthorized`), if any.
 */
export function variableOf(option: string): string | undefined {
  for (let o = option; o !== ''; o = o.includes('.') ? o.slice(0, o.lastIndexOf('.')) : '') {
    const found = Object.entries(OPTION_OF).find(([, opt]) => opt === o);
    if (found) return found[0];
  }
  return undefined;
}

export const ENV_VARS: readonly EnvVar[] = [
  {
    name: 'DATABASE_URL',
    description: 'PostgreSQL connection URL (required)',
    example: 'postgres://baton:baton@postgres:5432/baton',
  },
  { name: 'BATON_DB_POOL_SIZE', description: 'connections in the node pool (default 10)' },
  { name: 'BATON_DB_SCHEMA', description: "schema of Baton's tables (default baton)" },
  {
    name: 'BATON_DB_SSL',
    description: 'true to connect with TLS; "no-verify" to skip certificate checks',
  },
  { name: 'BATON_DB_SSL_CA_FILE', description: 'CA certificate (PEM file) for PostgreSQL TLS' },
  {
    name: 'BATON_DB_SSL_CERT_FILE',
    description: 'client certificate (PEM file) for PostgreSQL TLS',
  },
  { name: 'BATON_DB_SSL_KEY_FILE', description: 'client key (PEM file) for PostgreSQL TLS' },
  {
    name: 'NATS_URL',
    description: 'NATS server URL(s), comma-separated; unset: the PostgreSQL bus',
    example: 'nats://nats:4222',
  },
  { name: 'BATON_NATS_USER', description: 'NATS user' },
  { name: 'BATON_NATS_PASS', description: 'NATS password' },
  { name: 'BATON_NATS_TOKEN', description: 'NATS token' },
  { name: 'BATON_NATS_TLS_CA_FILE', description: 'CA certificate (PEM file) for NATS TLS' },
  { name: 'BATON_NATS_TLS_CERT_FILE', description: 'client certificate (PEM file) for NATS TLS' },
  { name: 'BATON_NATS_TLS_KEY_FILE', description: 'client key (PEM file) for NATS TLS' },
  {
    name: 'BATON_NATS_JETSTREAM',
    description:
      'the JetStream submission stream: auto uses it when the NATS server has JetStream (else warns), true requires it (the start fails without), false never uses it (default auto)',
  },
  {
    name: 'BATON_NODE_ID',
    description:
      "this node's id, Ballerina's taskId, unique in its group: a node refuses to start under the id of a live node (default host-pid-random)",
    example: 'node-1',
  },
  {
    name: 'BATON_GROUP',
    description:
      "the group, Ballerina's groupId: its nodes share one token, one status subject and their schedules; the tasks are the schema's, so keep deployments apart by BATON_DB_SCHEMA (default default)",
    example: 'orders',
  },
  {
    name: 'BATON_HANDLERS',
    description: 'comma-separated handler modules to load (paths or package names)',
    example: '/app/handlers/index.mjs',
  },
  { name: 'BATON_CONCURRENCY', description: 'handlers running at once on this node (default 32)' },
  { name: 'BATON_QUEUE', description: 'the queue this node works (default default)' },
  {
    name: 'BATON_POLL_INTERVAL_MS',
    description: 'fallback poll when no wake-up arrives (default 1000)',
  },
  {
    name: 'BATON_LEASE_MS',
    description: 'task lease, extended while a handler runs (default 30000)',
  },
  { name: 'BATON_TASK_TIMEOUT_MS', description: 'default handler timeout (default 300000)' },
  {
    name: 'BATON_HEARTBEAT_FREQUENCY',
    description: "seconds between heartbeats, Ballerina's heartbeatFrequency (default 0.1)",
  },
  {
    name: 'BATON_LIVENESS_CHECK_INTERVAL',
    description:
      "seconds the token lives without a heartbeat, Ballerina's livenessCheckInterval (default 0.5)",
  },
  {
    name: 'BATON_SHUTDOWN_GRACE_MS',
    description: 'time in-flight tasks get on SIGTERM (default 10000)',
  },
  {
    name: 'BATON_RETENTION_COMPLETED',
    description: 'seconds completed tasks are kept, or "forever" (default 86400)',
  },
  {
    name: 'BATON_RETENTION_CANCELLED',
    description: 'seconds cancelled tasks are kept, or "forever" (default 604800)',
  },
  {
    name: 'BATON_RETENTION_DEAD_LETTER',
    description: 'seconds dead-lettered tasks are kept, or "forever" (default 2592000)',
  },
  {
    name: 'BATON_RETENTION_INTERVAL',
    description: 'seconds between two deletions of expired tasks by the token bearer (default 60)',
  },
  {
    name: 'BATON_HTTP_HOST',
    description:
      'address of /health, /ready, /metrics (default 0.0.0.0 for the entrypoint; createNode in code defaults to 127.0.0.1)',
    example: '0.0.0.0',
  },
  {
    name: 'BATON_HTTP_PORT',
    description: 'port of /health, /ready, /metrics (default 9464)',
    example: '9464',
  },
  {
    name: 'BATON_LOG_LEVEL',
    description: 'fatal, error, warn, info, debug, trace or silent (default info)',
    example: 'info',
  },
];

const KNOWN = new Set(ENV_VARS.map((v) => v.name));

/** A bad environment variable, named. */
export class EnvError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'EnvError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function intVar(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw)) throw new EnvError(name, `must be a whole number, got "${raw}"`);
  return Number(raw);
}

function numVar(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new EnvError(name, `must be a number, got "${raw}"`);
  return n;
}

/** A retention in seconds, or `forever` (null): undefined when unset. */
function keepVar(env: Env, name: string): number | null | undefined {
  if (env[name]?.trim() === 'forever') return null;
  const raw = env[name];
  if (raw !== undefined && raw !== '' && !/^\d+(\.\d+)?$/.test(raw.trim())) {
    throw new EnvError(name, `must be a number of seconds or "forever", got "${raw}"`);
  }
  return numVar(env, name);
}

/** `auto`, `true` or `false`: undefined when unset. */
function autoBoolVar(env: Env, name: string): 'auto' | boolean | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'auto') return 'auto';
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new EnvError(name, `must be auto, true or false, got "${env[name]}"`);
}

function listVar(env: Env, name: string): string[] | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function tls(env: Env, prefix: string): TlsOptions | undefined {
  const ca = env[`${prefix}_CA_FILE`];
  const cert = env[`${prefix}_CERT_FILE`];
  const key = env[`${prefix}_KEY_FILE`];
  if (!ca && !cert && !key) return undefined;
  return {
    ...(ca ? { caFile: ca } : {}),
    ...(cert ? { certFile: cert } : {}),
    ...(key ? { keyFile: key } : {}),
  };
}

/** Unknown `BATON_*` variables: likely typos, reported at start. */
export function unknownVariables(env: Env): string[] {
  return Object.keys(env).filter((k) => k.startsWith('BATON_') && !KNOWN.has(k));
}

/** Node options from the environment, and the handler modules to load. */
export function optionsFromEnv(env: Env): { options: NodeOptions; handlerModules: string[] } {
  const url = env.DATABASE_URL;
  if (!url) throw new EnvError('DATABASE_URL', 'is required (a postgres:// URL)');
  const sslMode = env.BATON_DB_SSL;
  if (sslMode !== undefined && !['', 'true', 'false', 'no-verify'].includes(sslMode)) {
    throw new EnvError('BATON_DB_SSL', `must be true, false or no-verify, got "${sslMode}"`);
  }
  const dbTls = tls(env, 'BATON_DB_SSL');
  if (sslMode === 'false' && dbTls) {
    throw new EnvError(
      'BATON_DB_SSL',
      'is false, but BATON_DB_SSL_*_FILE variables are set: TLS off or on? Unset one',
    );
  }
  const ssl =
    sslMode === 'no-verify'
      ? { ...dbTls, rejectUnauthorized: false }
      : sslMode === 'true' || dbTls
        ? (dbTls ?? true)
        : undefined;
  const natsServers = listVar(env, 'NATS_URL');
  const natsTls = tls(env, 'BATON_NATS_TLS');
  const jetstream = autoBoolVar(env, 'BATON_NATS_JETSTREAM');
  const heartbeatFrequency = numVar(env, 'BATON_HEARTBEAT_FREQUENCY');
  const livenessCheckInterval = numVar(env, 'BATON_LIVENESS_CHECK_INTERVAL');
  const httpPort = intVar(env, 'BATON_HTTP_PORT');
  const options: NodeOptions = {
    ...(env.BATON_NODE_ID ? { nodeId: env.BATON_NODE_ID } : {}),
    ...(env.BATON_GROUP ? { groupId: env.BATON_GROUP } : {}),
    database: {
      url,
      ...(intVar(env, 'BATON_DB_POOL_SIZE') !== undefined
        ? { poolSize: intVar(env, 'BATON_DB_POOL_SIZE') }
        : {}),
      ...(env.BATON_DB_SCHEMA ? { schema: env.BATON_DB_SCHEMA } : {}),
      ...(ssl !== undefined ? { ssl } : {}),
    },
    ...(natsServers
      ? {
          nats: {
            servers: natsServers,
            ...(env.BATON_NATS_USER ? { user: env.BATON_NATS_USER } : {}),
            ...(env.BATON_NATS_PASS ? { pass: env.BATON_NATS_PASS } : {}),
            ...(env.BATON_NATS_TOKEN ? { token: env.BATON_NATS_TOKEN } : {}),
            ...(natsTls ? { tls: natsTls } : {}),
            ...(jetstream !== undefined ? { jetstream } : {}),
          },
        }
      : {}),
    warmBackup: {
      ...(heartbeatFrequency !== undefined ? { heartbeatFrequency } : {}),
      ...(livenessCheckInterval !== undefined ? { livenessCheckInterval } : {}),
    },
    worker: {
      ...(intVar(env, 'BATON_CONCURRENCY') !== undefined
        ? { concurrency: intVar(env, 'BATON_CONCURRENCY') }
        : {}),
      ...(env.BATON_QUEUE ? { queue: env.BATON_QUEUE } : {}),
      ...(intVar(env, 'BATON_POLL_INTERVAL_MS') !== undefined
        ? { pollIntervalMs: intVar(env, 'BATON_POLL_INTERVAL_MS') }
        : {}),
      ...(intVar(env, 'BATON_LEASE_MS') !== undefined
        ? { leaseMs: intVar(env, 'BATON_LEASE_MS') }
        : {}),
      ...(intVar(env, 'BATON_TASK_TIMEOUT_MS') !== undefined
        ? { timeoutMs: intVar(env, 'BATON_TASK_TIMEOUT_MS') }
        : {}),
    },
    ...(intVar(env, 'BATON_SHUTDOWN_GRACE_MS') !== undefined
      ? { shutdownGraceMs: intVar(env, 'BATON_SHUTDOWN_GRACE_MS') }
      : {}),
    retention: Object.fromEntries(
      (
        [
          ['completed', keepVar(env, 'BATON_RETENTION_COMPLETED')],
          ['cancelled', keepVar(env, 'BATON_RETENTION_CANCELLED')],
          ['deadLetter', keepVar(env, 'BATON_RETENTION_DEAD_LETTER')],
          ['interval', numVar(env, 'BATON_RETENTION_INTERVAL')],
        ] as const
      ).filter(([, v]) => v !== undefined),
    ),
    http: { host: env.BATON_HTTP_HOST ?? '0.0.0.0', port: httpPort ?? 9464 },
    ...(env.BATON_LOG_LEVEL
      ? { logLevel: env.BATON_LOG_LEVEL as NonNullable<NodeOptions['logLevel']> }
      : {}),
  };
  return { options, handlerModules: listVar(env, 'BATON_HANDLERS') ?? [] };
}
