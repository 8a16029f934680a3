/**
 * Options of the NATS adapter, validated and compiled once: defaults
 * applied, durations as `...Ms`, conflicting options refused with an
 * {@link InvalidArgumentError} that names the option (`nats.user`, ...).
 */
import type { NodeConnectionOptions } from '@nats-io/transport-node';
import { InvalidArgumentError } from '@baton/store';

/** TLS settings of the NATS connection. Files are read by the client. */
export interface NatsTlsOptions {
  /** CA certificate (PEM) file, to trust a private CA. */
  readonly caFile?: string;
  /** Client certificate (PEM) file, for mutual TLS. */
  readonly certFile?: string;
  /** Client key (PEM) file, for mutual TLS. */
  readonly keyFile?: string;
  /** CA certificate (PEM text), instead of `caFile`. */
  readonly ca?: string;
  /** Client certificate (PEM text), instead of `certFile`. */
  readonly cert?: string;
  /** Client key (PEM text), instead of `keyFile`. */
  readonly key?: string;
  /**
   * Verify the server's certificate.
   * @default true
   */
  readonly rejectUnauthorized?: boolean;
  /**
   * TLS handshake before the NATS INFO (server option `handshake_first`).
   * @default false
   */
  readonly handshakeFirst?: boolean;
}

/** Options of `createNatsBus`. */
export interface NatsBusOptions {
  /** Server URL(s), e.g. `nats://127.0.0.1:4222` or `tls://nats.example:4222`. */
  readonly servers: string | readonly string[];
  /** Client name shown by the server's monitoring (e.g. `baton-<group>-<node>`). */
  readonly name?: string;
  /** User name; requires `pass`. Excludes `token`. */
  readonly user?: string;
  /** Password of `user`. */
  readonly pass?: string;
  /** Authentication token. Excludes `user`/`pass`. */
  readonly token?: string;
  /** TLS settings; when set, the connection requires TLS. */
  readonly tls?: NatsTlsOptions;
  /**
   * Keep trying when no server answers at start, instead of failing.
   * @default true
   */
  readonly waitOnFirstConnect?: boolean;
  /**
   * Pause between reconnect attempts, in milliseconds.
   * @default 1000
   */
  readonly reconnectTimeWaitMs?: number;
  /**
   * Upper bound of the random delay added to each pause, in milliseconds.
   * @default 100
   */
  readonly reconnectJitterMs?: number;
  /**
   * Handshake timeout of one connection attempt, in milliseconds.
   * @default 5000
   */
  readonly connectTimeoutMs?: number;
  /**
   * Interval of client pings, in milliseconds; `maxPingOut` unanswered pings
   * mark the connection stale and trigger a reconnect.
   * @default 20000
   */
  readonly pingIntervalMs?: number;
  /** @default 3 */
  readonly maxPingOut?: number;
  /**
   * How long `close()` waits for handlers already running, in milliseconds.
   * @default 5000
   */
  readonly closeGraceMs?: number;
}

export interface CompiledNatsBusOptions {
  readonly connection: NodeConnectionOptions;
  readonly closeGraceMs: number;
}

function positive(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) {
    throw new InvalidArgumentError(`nats.${field}`, 'must be a positive integer', value);
  }
  return value;
}

function optionalString(field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(`nats.${field}`, 'must be a non-empty string', value);
  }
  return value;
}

/**
 * Validates and compiles the options once. Throws {@link InvalidArgumentError}
 * naming the option (`nats.servers`, `nats.pass`, ...).
 */
export function compileNatsBusOptions(options: NatsBusOptions): CompiledNatsBusOptions {
  const servers = typeof options.servers === 'string' ? [options.servers] : [...options.servers];
  if (servers.length === 0)
    throw new InvalidArgumentError('nats.servers', 'must name at least one server');
  servers.forEach((server, i) => optionalString(`servers[${i}]`, server));
  const user = optionalString('user', options.user);
  const pass = optionalString('pass', options.pass);
  const token = optionalString('token', options.token);
  const name = optionalString('name', options.name);
  if (pass !== undefined && user === undefined) {
    throw new InvalidArgumentError('nats.pass', 'is set without nats.user');
  }
  if (user !== undefined && pass === undefined) {
    throw new InvalidArgumentError('nats.user', 'is set without nats.pass');
  }
  if (token !== undefined && user !== undefined) {
    throw new InvalidArgumentError(
      'nats.token',
      'excludes nats.user and nats.pass: use one or the other',
    );
  }
  const tls = options.tls;
  if (tls !== undefined) {
    if ((tls.certFile ?? tls.cert) !== undefined && (tls.keyFile ?? tls.key) === undefined) {
      throw new InvalidArgumentError('nats.tls.keyFile', 'is required with a client certificate');
    }
    if ((tls.keyFile ?? tls.key) !== undefined && (tls.certFile ?? tls.cert) === undefined) {
      throw new InvalidArgumentError('nats.tls.certFile', 'is required with a client key');
    }
  }
  const connection: NodeConnectionOptions = {
    servers,
    reconnect: true,
    maxReconnectAttempts: -1,
    waitOnFirstConnect: options.waitOnFirstConnect ?? true,
    reconnectTimeWait: positive('reconnectTimeWaitMs', options.reconnectTimeWaitMs, 1000),
    reconnectJitter: positive('reconnectJitterMs', options.reconnectJitterMs, 100),
    timeout: positive('connectTimeoutMs', options.connectTimeoutMs, 5000),
    pingInterval: positive('pingIntervalMs', options.pingIntervalMs, 20_000),
    maxPingOut: positive('maxPingOut', options.maxPingOut, 3),
    ...(name !== undefined && { name }),
    ...(user !== undefined && { user, pass }),
    ...(token !== undefined && { token }),
    ...(tls !== undefined && { tls: { ...tls } }),
  };
  return Object.freeze({
    connection: Object.freeze(connection),
    closeGraceMs: positive('closeGraceMs', options.closeGraceMs, 5000),
  });
}
