/**
 * Typed errors of the store. Each has a stable `code` that callers (and
 * replies on the bus) can rely on, structured fields, and the `cause`.
 */

export type StoreErrorCode =
  | 'INVALID_ARGUMENT'
  | 'PAYLOAD_TOO_LARGE'
  | 'TASK_NOT_FOUND'
  | 'ILLEGAL_TRANSITION'
  | 'MIGRATION_FAILED'
  | 'INVALID_CONFIG';

export class BatonError extends Error {
  readonly code: string;
  readonly fields: Readonly<Record<string, unknown>>;

  constructor(
    code: string,
    message: string,
    fields: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.fields = Object.freeze({ ...fields });
  }

  toJSON(): { code: string; message: string; fields: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, fields: this.fields };
  }
}

/** Bad input: `field` names the offending field; nothing was written. */
export class InvalidArgumentError extends BatonError {
  declare readonly fields: Readonly<{ field: string; value?: unknown }>;
  constructor(field: string, message: string, value?: unknown) {
    super('INVALID_ARGUMENT', `${field}: ${message}`, { field, value });
  }
  get field(): string {
    return this.fields.field;
  }
}

export class PayloadTooLargeError extends BatonError {
  constructor(field: string, size: number, limit: number) {
    super('PAYLOAD_TOO_LARGE', `${field}: ${size} bytes exceeds the limit of ${limit} bytes`, {
      field,
      size,
      limit,
    });
  }
}

export class TaskNotFoundError extends BatonError {
  constructor(id: string) {
    super('TASK_NOT_FOUND', `task ${id} does not exist`, { id });
  }
}

/** The requested transition is not allowed from the task's current state. */
export class IllegalTransitionError extends BatonError {
  constructor(id: string, from: string, to: string, detail?: string) {
    super(
      'ILLEGAL_TRANSITION',
      `task ${id}: ${from} -> ${to} is not a legal transition${detail ? ` (${detail})` : ''}`,
      { id, from, to },
    );
  }
}

export class MigrationError extends BatonError {
  constructor(message: string, fields: Record<string, unknown>, cause?: unknown) {
    super('MIGRATION_FAILED', message, fields, { cause });
  }
}

/**
 * PostgreSQL error codes for which retrying the same operation can succeed
 * (connection loss, serialization failure, deadlock, server shutting down).
 */
export const RETRYABLE_PG_ERROR_CODES: ReadonlySet<string> = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000', // connection_exception
  '08003', // connection_does_not_exist
  '08006', // connection_failure
  '08001', // sqlclient_unable_to_establish_sqlconnection
  '08004', // sqlserver_rejected_establishment_of_sqlconnection
  '53300', // too_many_connections
]);

/** True when `error` is a PostgreSQL or socket error that a retry can cure. */
export function isRetryablePgError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return false;
  return RETRYABLE_PG_ERROR_CODES.has(code) || code === 'ECONNRESET' || code === 'ECONNREFUSED';
}

/**
 * A PostgreSQL data exception (SQLSTATE class 22): a value the database
 * refused (out of range, bad encoding, invalid text), the same on every try.
 */
export function isDataException(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.length === 5 && code.startsWith('22');
}
