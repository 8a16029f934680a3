/**
 * Encoding of bus messages.
 *
 * - Internal messages (heartbeats, dispatch, status, cancel, events) are
 *   MessagePack, packed with msgpackr as plain maps (no msgpackr records),
 *   so any MessagePack client can read them. Dates travel as the standard
 *   timestamp extension; `undefined` properties are left out, as in JSON;
 *   64-bit integers decode to numbers when they are safe, to bigints otherwise.
 * - Submissions (`baton.<group>.submit.<type>`) are JSON or MessagePack: a
 *   body whose first non-blank byte starts a JSON value (`{`, `[`, `"`, a
 *   digit, `-`, `t`, `f`, `n`) is JSON, anything else is MessagePack. A valid
 *   submission is a map either way, and a MessagePack map never starts with
 *   such a byte (they are the integers 0 to 127 in MessagePack), so the test
 *   is exact for valid bodies; for a bad one it names the likelier encoding,
 *   the one its error reply uses.
 */
import { Packr, type Options as PackrOptions } from 'msgpackr';
import { PayloadTooLargeError } from '@baton/store';
import { CodecError } from './errors.js';

/** The two encodings a submission may use. */
export type Encoding = 'json' | 'msgpack';

/** Default limit of a submission body: NATS's default `max_payload`. */
export const DEFAULT_MAX_SUBMISSION_BYTES = 1024 * 1024;

// `skipValues` and `int64AsType: 'auto'` exist in msgpackr 2.x but are
// missing from its type declarations.
const packrOptions: Omit<PackrOptions, 'int64AsType'> & {
  int64AsType: 'auto';
  skipValues: unknown[];
} = {
  useRecords: false,
  mapsAsObjects: true,
  int64AsType: 'auto',
  skipValues: [undefined],
};
const packr = new Packr(packrOptions as unknown as PackrOptions);
const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? (value.constructor?.name ?? 'an object') : `a ${typeof value}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Packs an internal message as MessagePack.
 *
 * @example
 * const data = encodeMessage({ node: 'n1', at: new Date() });
 */
export function encodeMessage(value: unknown): Uint8Array {
  return packr.pack(value);
}

/**
 * Packs `message` (a map of fewer than 15 fields) with one more field, `key`,
 * whose value is already packed by {@link encodeMessage}: a batch's items,
 * packed once, serve each message that carries them. The result is the
 * MessagePack map `encodeMessage({ ...message, [key]: value })` would give.
 */
export function encodeMessageWith(
  message: Readonly<Record<string, unknown>>,
  key: string,
  packed: Uint8Array,
): Uint8Array {
  if (Object.hasOwn(message, key)) {
    throw new TypeError(`encodeMessageWith: the message already has a field ${key}`);
  }
  const head = packr.pack(message);
  const fields = head[0]! - 0x80; // a fixmap's header holds its size
  if (fields < 0 || fields >= 15) {
    throw new TypeError('encodeMessageWith: the message must be a map of fewer than 15 fields');
  }
  const name = packr.pack(key);
  const out = new Uint8Array(head.length + name.length + packed.length);
  out.set(head);
  out[0] = 0x80 + fields + 1;
  out.set(name, head.length);
  out.set(packed, head.length + name.length);
  return out;
}

/**
 * Unpacks an internal message. Throws {@link CodecError} (`BAD_ENCODING`)
 * when `data` is not exactly one MessagePack value.
 */
export function decodeMessage(data: Uint8Array): unknown {
  try {
    return packr.unpack(data);
  } catch (error) {
    throw new CodecError(
      'msgpack',
      data.length,
      `body is not valid MessagePack (${data.length} bytes): ${reason(error)}`,
      error,
    );
  }
}

/** Encodes `value` as `encoding`: used to answer a submitter in its own encoding. */
export function encodeAs(encoding: Encoding, value: unknown): Uint8Array {
  return encoding === 'json' ? utf8Encoder.encode(JSON.stringify(value)) : encodeMessage(value);
}

/** The bytes a JSON value starts with: `{ [ " -`, the digits, and `t f n` (true, false, null). */
const JSON_START = new Set([...'{["-0123456789tfn'].map((c) => c.charCodeAt(0)));

/**
 * The encoding of a body (a submission, a status request), read from its
 * first byte after optional whitespace (and an optional UTF-8 byte order
 * mark): `json` when that byte starts a JSON value (`{`, `[`, `"`, a digit,
 * `-`, `t`, `f`, `n`), `msgpack` otherwise, and for an empty body. Cheap: it
 * reads no further, so it can pick the encoding of any reply, even to a body
 * too large to decode.
 */
export function detectEncoding(data: Uint8Array): Encoding {
  let i = 0;
  if (data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf) i = 3;
  for (; i < data.length; i++) {
    const byte = data[i]!;
    if (byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) continue;
    return JSON_START.has(byte) ? 'json' : 'msgpack';
  }
  return 'msgpack';
}

/** A decoded submission body and the encoding it came in. */
export interface DecodedSubmission {
  readonly encoding: Encoding;
  /** The top-level map; its fields are validated by the submission handler. */
  readonly value: Record<string, unknown>;
}

/** Options of {@link decodeSubmission}. */
export interface DecodeSubmissionOptions {
  /**
   * Largest body accepted, in bytes.
   * @default 1048576
   */
  readonly maxBytes?: number;
}

/**
 * Decodes a submission body sent as JSON or MessagePack. Its top level must
 * be an object (map). Throws {@link CodecError} (`BAD_ENCODING`, with a
 * message naming the problem) for an empty, malformed or non-object body,
 * and `PayloadTooLargeError` (`PAYLOAD_TOO_LARGE`, field `body`) for a
 * body above `maxBytes`. Only decoding happens here; the fields (payload,
 * priority, runAt, ...) are validated by the caller.
 *
 * The encoding it returns is {@link detectEncoding}'s: when it throws, reply
 * in `detectEncoding(data)`.
 *
 * @example
 * const { encoding, value } = decodeSubmission(msg.data);
 * // reply in the submitter's encoding:
 * msg.respond(encodeAs(encoding, { id, duplicate }));
 */
export function decodeSubmission(
  data: Uint8Array,
  options: DecodeSubmissionOptions = {},
): DecodedSubmission {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_SUBMISSION_BYTES;
  const encoding = detectEncoding(data);
  if (data.length > maxBytes) throw new PayloadTooLargeError('body', data.length, maxBytes);
  if (data.length === 0) {
    throw new CodecError(encoding, 0, 'body is empty: expected a JSON object or a MessagePack map');
  }
  let value: unknown;
  if (encoding === 'json') {
    let text: string;
    try {
      text = utf8.decode(data);
    } catch (error) {
      throw new CodecError('json', data.length, 'body is not valid UTF-8 JSON', error);
    }
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new CodecError('json', data.length, `body is not valid JSON: ${reason(error)}`, error);
    }
  } else {
    try {
      value = packr.unpack(data);
    } catch (error) {
      throw new CodecError(
        'msgpack',
        data.length,
        `body is neither a JSON object nor valid MessagePack: ${reason(error)}`,
        error,
      );
    }
  }
  if (!isPlainObject(value)) {
    throw new CodecError(
      encoding,
      data.length,
      `body must be a JSON object or a MessagePack map, got ${describe(value)} (${encoding === 'json' ? 'JSON' : 'MessagePack'})`,
    );
  }
  return { encoding, value };
}
