import { describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import {
  decodeMessage,
  decodeSubmission,
  detectEncoding,
  encodeAs,
  encodeMessage,
  encodeMessageWith,
} from '../src/bus/codec.js';
import { CodecError } from '../src/bus/errors.js';

const submission = {
  payload: { to: 'a@example.com', n: [1, 2, 3], nested: { ok: true } },
  priority: 5,
  runAt: '2030-01-01T00:00:00.000Z',
  maxAttempts: 3,
  idempotencyKey: 'k-1',
  queue: 'mail',
};
const json = (value: unknown, pad = ''): Uint8Array =>
  new TextEncoder().encode(pad + JSON.stringify(value));

function codecError(fn: () => unknown): CodecError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CodecError);
    return error as CodecError;
  }
  throw new Error('expected a CodecError');
}

describe('decodeSubmission', () => {
  it('decodes a JSON body and a MessagePack body of the same submission to the same value', () => {
    const fromJson = decodeSubmission(json(submission));
    // A plain msgpack encoder, as another language's client would use.
    const fromMsgpack = decodeSubmission(pack(submission));
    expect(fromJson).toEqual({ encoding: 'json', value: submission });
    expect(fromMsgpack).toEqual({ encoding: 'msgpack', value: submission });
  });

  it('detects JSON after leading whitespace and a byte order mark', () => {
    expect(decodeSubmission(json(submission, ' \n\t\r')).encoding).toBe('json');
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...json({ a: 1 })]);
    expect(decodeSubmission(bom)).toEqual({ encoding: 'json', value: { a: 1 } });
    expect(detectEncoding(pack({ a: 1 }))).toBe('msgpack');
  });

  it('reads the encoding of a bad body from its first byte: JSON when it starts a JSON value', () => {
    for (const text of ['[1,2]', 'null', ' true', 'false', '"a"', '-1', '7', '{']) {
      expect(detectEncoding(new TextEncoder().encode(text)), text).toBe('json');
    }
    // MessagePack values that are not maps, and what starts no JSON value.
    for (const body of [pack([1, 2]), pack('task'), pack(null), pack(5), pack(-1), pack(1.5)]) {
      expect(detectEncoding(body), String(body[0])).toBe('msgpack');
    }
    expect(detectEncoding(new TextEncoder().encode('hello'))).toBe('msgpack');
    expect(detectEncoding(new Uint8Array())).toBe('msgpack');
  });

  it('reads 64-bit MessagePack integers from other clients as numbers', () => {
    // 0x81 map(1), "priority", int64 5 (0xd3): how some clients encode every integer.
    const body = new Uint8Array([
      0x81,
      0xa8,
      ...new TextEncoder().encode('priority'),
      0xd3,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      5,
    ]);
    expect(decodeSubmission(body).value).toEqual({ priority: 5 });
  });

  it.each([
    [
      'garbage text',
      new TextEncoder().encode('hello, world'),
      'msgpack',
      /neither a JSON object nor valid MessagePack/,
    ],
    ['truncated JSON', new TextEncoder().encode('{"payload": '), 'json', /not valid JSON/],
    [
      'invalid UTF-8 in JSON',
      new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]),
      'json',
      /not valid UTF-8/,
    ],
    ['truncated MessagePack', pack(submission).subarray(0, 10), 'msgpack', /valid MessagePack/],
    [
      'trailing bytes after a map',
      new Uint8Array([...pack({ a: 1 }), 0x01]),
      'msgpack',
      /end of buffer not reached/,
    ],
    ['an empty body', new Uint8Array(), 'msgpack', /empty/],
    [
      'a JSON array',
      new TextEncoder().encode('[1,2]'),
      'json',
      /^body must be a JSON object or a MessagePack map, got an array \(JSON\)$/,
    ],
    ['JSON null', new TextEncoder().encode(' null'), 'json', /map, got null \(JSON\)$/],
    ['a JSON string', new TextEncoder().encode('"task"'), 'json', /got a string \(JSON\)$/],
    ['a JSON number', new TextEncoder().encode('-42'), 'json', /got a number \(JSON\)$/],
    ['a truncated JSON array', new TextEncoder().encode('[1,'), 'json', /not valid JSON/],
    [
      'a MessagePack array',
      pack([1, 2]),
      'msgpack',
      /^body must be a JSON object or a MessagePack map, got an array \(MessagePack\)$/,
    ],
    ['a MessagePack string', pack('task'), 'msgpack', /got a string \(MessagePack\)$/],
    ['MessagePack nil', pack(null), 'msgpack', /got null \(MessagePack\)$/],
  ] as const)('rejects %s with BAD_ENCODING', (_name, body, encoding, message) => {
    const error = codecError(() => decodeSubmission(body));
    expect(error.code).toBe('BAD_ENCODING');
    expect(error.fields).toMatchObject({ encoding, size: body.length });
    expect(error.message).toMatch(message);
    expect(error.toJSON()).toMatchObject({ code: 'BAD_ENCODING', message: error.message });
  });

  it('rejects a body above maxBytes with PAYLOAD_TOO_LARGE naming the body', () => {
    let caught: unknown;
    try {
      decodeSubmission(json({ payload: 'x'.repeat(100) }), { maxBytes: 64 });
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      fields: { field: 'body', limit: 64 },
    });
  });

  it('does not let a __proto__ key change the prototype', () => {
    const { value } = decodeSubmission(
      new TextEncoder().encode('{"__proto__": {"polluted": true}}'),
    );
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('internal messages', () => {
  it('round-trips maps, dates, binary and big integers; leaves out undefined like JSON', () => {
    const at = new Date('2026-05-01T12:34:56.789Z');
    const message = {
      node: 'n1',
      at,
      term: 42,
      big: 2n ** 62n,
      bin: new Uint8Array([1, 2, 3]),
      list: [1, 'two', null],
      missing: undefined,
    };
    const decoded = decodeMessage(encodeMessage(message)) as Record<string, unknown>;
    expect(decoded.at).toBeInstanceOf(Date);
    expect((decoded.at as Date).getTime()).toBe(at.getTime());
    expect(decoded).toMatchObject({ node: 'n1', term: 42, big: 2n ** 62n, list: [1, 'two', null] });
    expect([...(decoded.bin as Uint8Array)]).toEqual([1, 2, 3]);
    expect('missing' in decoded).toBe(false);
  });

  it('packs plain maps (no msgpackr records), readable by any MessagePack client', () => {
    // fixmap with 1 entry, then the key: not msgpackr's record extension.
    expect(encodeMessage({ a: 1 })[0]).toBe(0x81);
  });

  it('rejects a body that is not MessagePack with BAD_ENCODING', () => {
    const error = codecError(() => decodeMessage(new Uint8Array([0x81, 0xa1])));
    expect(error.code).toBe('BAD_ENCODING');
  });

  it('encodes a reply in the encoding of the submission', () => {
    expect(new TextDecoder().decode(encodeAs('json', { id: '7', duplicate: false }))).toBe(
      '{"id":"7","duplicate":false}',
    );
    expect(decodeMessage(encodeAs('msgpack', { id: '7' }))).toEqual({ id: '7' });
  });
});

describe('encodeMessageWith', () => {
  const tasks = [
    { id: '1', type: 'email', attempt: 1 },
    { id: '2', type: 'report', attempt: 3 },
  ];

  it('gives the bytes of the whole message packed at once, with the packed field last', () => {
    const packed = encodeMessage(tasks);
    const message = { status: 'claimed', node: 'n1', at: 1_700_000_000_000 };
    const bytes = encodeMessageWith(message, 'tasks', packed);
    expect(Buffer.from(bytes)).toEqual(Buffer.from(encodeMessage({ ...message, tasks })));
    expect(decodeMessage(bytes)).toEqual({ ...message, tasks });
    // The same packed items serve a second message.
    expect(decodeMessage(encodeMessageWith({ status: 'running' }, 'tasks', packed))).toEqual({
      status: 'running',
      tasks,
    });
  });

  it('refuses a message that is not a small map', () => {
    const packed = encodeMessage(tasks);
    const wide = Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`f${i}`, i]));
    expect(() => encodeMessageWith(wide, 'tasks', packed)).toThrow(/fewer than 15 fields/);
    // A second `tasks` would make a map with the key twice.
    expect(() => encodeMessageWith({ tasks: 1 }, 'tasks', packed)).toThrow(
      /already has a field tasks/,
    );
  });
});
