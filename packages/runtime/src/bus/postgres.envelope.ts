/**
 * The envelope of one PostgreSQL bus message: what travels as a NOTIFY
 * payload. A MessagePack array `[1, id, subject, reply | null, body]`,
 * base64-encoded (payloads are text and must not contain NUL bytes), where
 * `body` is the message bytes, or, for a body stored by reference in
 * `bus_payloads`, its size in bytes. `id` is a random positive 53-bit
 * integer: the key of queue-group claims and of stored bodies.
 */
import { randomBytes } from 'node:crypto';
import { Packr } from 'msgpackr';
import { CodecError } from './errors.js';

const VERSION = 1;
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** A decoded envelope. `body` is a number when the bytes are stored by reference. */
export interface Envelope {
  readonly id: number;
  readonly subject: string;
  readonly reply: string | undefined;
  readonly body: Uint8Array | number;
}

/** A fresh message id: random, positive, a safe integer (fits a `bigint` column). */
export function newMessageId(): number {
  const id = Number(randomBytes(8).readBigUInt64BE() >> 11n);
  return id === 0 ? 1 : id;
}

/** Encodes an envelope as NOTIFY payload text (ASCII: its length is its size in bytes). */
export function encodeEnvelope(envelope: Envelope): string {
  const body =
    typeof envelope.body === 'number'
      ? envelope.body
      : Buffer.from(envelope.body.buffer, envelope.body.byteOffset, envelope.body.byteLength);
  const packed = packr.pack([VERSION, envelope.id, envelope.subject, envelope.reply ?? null, body]);
  return packed.toString('base64');
}

/** Decodes a NOTIFY payload; throws {@link CodecError} when it is not an envelope. */
export function decodeEnvelope(payload: string | undefined): Envelope {
  const text = payload ?? '';
  const fail = (why: string, cause?: unknown): never => {
    throw new CodecError('msgpack', text.length, `not a bus envelope: ${why}`, cause);
  };
  let value: unknown;
  try {
    value = packr.unpack(Buffer.from(text, 'base64'));
  } catch (error) {
    return fail('undecodable', error);
  }
  if (!Array.isArray(value) || value.length !== 5) return fail('not a 5-element array');
  const [version, id, subject, reply, body] = value as unknown[];
  if (version !== VERSION) return fail(`unknown version ${String(version)}`);
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) return fail('bad id');
  if (typeof subject !== 'string' || subject.length === 0) return fail('bad subject');
  if (reply !== null && (typeof reply !== 'string' || reply.length === 0)) return fail('bad reply');
  let data: Uint8Array | number;
  if (body instanceof Uint8Array) data = new Uint8Array(body);
  else if (typeof body === 'number' && Number.isSafeInteger(body) && body >= 0) data = body;
  else return fail('bad body');
  return { id, subject, reply: reply ?? undefined, body: data };
}
