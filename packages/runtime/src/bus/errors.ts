/**
 * Typed errors of the bus layer. They extend the store's {@link BatonError},
 * so every error a node reports carries a stable `code`, structured `fields`
 * and its `cause`, whichever package raised it.
 */
import { BatonError } from '@baton/store';

/**
 * Stable codes of {@link BusError}.
 *
 * - `TIMEOUT`: no reply arrived within the request's `timeoutMs`.
 * - `NO_RESPONDERS`: the adapter knows that nobody listens on the subject
 *   (NATS does; an adapter that cannot tell reports `TIMEOUT` instead).
 * - `CLOSED`: the bus was closed before or during the operation.
 * - `CONNECT_FAILED`: the first connection could not be made.
 * - `JETSTREAM_DISABLED`: the NATS server (or the account) has JetStream
 *   off; core NATS works.
 * - `BUS_FAILURE`: any other failure of the transport (see `cause`).
 */
export type BusErrorCode =
  | 'TIMEOUT'
  | 'NO_RESPONDERS'
  | 'CLOSED'
  | 'CONNECT_FAILED'
  /** Disconnected: the message was not sent. */
  | 'DISCONNECTED'
  | 'JETSTREAM_DISABLED'
  | 'BUS_FAILURE';

/** A bus operation failed; `fields.subject` names the subject when there is one. */
export class BusError extends BatonError {
  declare readonly code: BusErrorCode;
  constructor(
    code: BusErrorCode,
    message: string,
    fields: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(code, message, fields, options);
  }
}

/**
 * A message body that cannot be decoded (`BAD_ENCODING`): not valid JSON nor
 * MessagePack, trailing bytes, invalid UTF-8, or a submission whose top level
 * is not an object. `fields.encoding` says which decoder was tried.
 */
export class CodecError extends BatonError {
  declare readonly code: 'BAD_ENCODING';
  declare readonly fields: Readonly<{ encoding: 'json' | 'msgpack'; size: number }>;
  constructor(encoding: 'json' | 'msgpack', size: number, message: string, cause?: unknown) {
    super('BAD_ENCODING', message, { encoding, size }, { cause });
  }
}
