/**
 * Typed errors of the observability layer (metrics, health, HTTP, logs).
 * They extend the store's {@link BatonError}, so they carry a stable `code`,
 * structured `fields` and their `cause` like every other error of a node.
 */
import { BatonError } from '@baton/store';

/**
 * An observability option is invalid (`INVALID_CONFIG`). `fields.option`
 * names it the way the node's config spells it (e.g. `log.level`,
 * `http.port`), and `fields.value` holds what was given.
 */
export class ObservabilityConfigError extends BatonError {
  declare readonly code: 'INVALID_CONFIG';
  declare readonly fields: Readonly<{ option: string; value: unknown }>;
  constructor(option: string, value: unknown, message: string) {
    super('INVALID_CONFIG', `${option}: ${message}`, { option, value });
  }
  /** The option at fault, e.g. `log.level`. */
  get option(): string {
    return this.fields.option;
  }
}

/**
 * The observability HTTP server could not listen (`HTTP_LISTEN_FAILED`):
 * the port is taken, the host does not resolve, or permission was refused.
 * `cause` is the socket error.
 */
export class HttpListenError extends BatonError {
  declare readonly code: 'HTTP_LISTEN_FAILED';
  declare readonly fields: Readonly<{ host: string; port: number }>;
  constructor(host: string, port: number, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      'HTTP_LISTEN_FAILED',
      `cannot listen on ${host}:${port}: ${reason}`,
      { host, port },
      {
        cause,
      },
    );
  }
}

/** Throws {@link ObservabilityConfigError} unless `value` is a finite number >= `min`. */
export function requireNumber(option: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new ObservabilityConfigError(option, value, `must be a finite number >= ${min}`);
  }
  return value;
}
