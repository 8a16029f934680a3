import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeMessage } from '../src/bus/codec.js';
import { handleSubmission, type SubmitHandlerDeps, type SubmitReply } from '../src/submit.js';

const text = (s: string) => new TextEncoder().encode(s);

/**
 * Hands `data` to the submission handler as a request on `subject` and
 * returns the raw reply, with deps that store every valid submission as
 * task 1 and accept bodies up to `maxBodyBytes`.
 */
async function submit(
  data: Uint8Array,
  { subject = 'baton.g.submit.echo', maxBodyBytes = 1024 } = {},
): Promise<Uint8Array> {
  const replies: Uint8Array[] = [];
  const deps: SubmitHandlerDeps = {
    typeOf: (s) =>
      s.startsWith('baton.g.submit.') ? s.slice('baton.g.submit.'.length) : undefined,
    enqueue: async () => ({ id: '1', duplicate: false }),
    maxBodyBytes,
    accepted: () => {},
    rejected: () => {},
  };
  await handleSubmission(
    {
      subject,
      data,
      reply: '_INBOX.1',
      respond: async (reply) => {
        replies.push(reply);
      },
    },
    deps,
  );
  expect(replies).toHaveLength(1);
  return replies[0]!;
}

/** A reply a MessagePack client reads: it must decode as MessagePack. */
const asMsgpack = (reply: Uint8Array) => decodeMessage(reply) as SubmitReply;
/** A reply a JSON client reads: it must parse as JSON. */
const asJson = (reply: Uint8Array) => JSON.parse(new TextDecoder().decode(reply)) as SubmitReply;

describe('submission replies come in the encoding of the request, errors included', () => {
  it('a MessagePack body over the limit is refused in MessagePack, a JSON one in JSON', async () => {
    const big = { payload: 'x'.repeat(2000) };
    expect(asMsgpack(await submit(pack(big)))).toMatchObject({
      ok: false,
      error: { code: 'PAYLOAD_TOO_LARGE', field: 'body' },
    });
    expect(asJson(await submit(text(JSON.stringify(big))))).toMatchObject({
      ok: false,
      error: { code: 'PAYLOAD_TOO_LARGE', field: 'body' },
    });
  });

  it.each([
    ['an array', pack([1, 2]), /got an array \(MessagePack\)/],
    ['a string', pack('task'), /got a string \(MessagePack\)/],
    ['nil', pack(null), /got null \(MessagePack\)/],
    ['an integer', pack(5), /got a number \(MessagePack\)/],
  ] as const)(
    'a MessagePack body that is %s, not a map, is refused in MessagePack',
    async (_name, body, message) => {
      const reply = asMsgpack(await submit(body));
      expect(reply).toMatchObject({ ok: false, error: { code: 'BAD_ENCODING' } });
      expect(!reply.ok && reply.error.message).toMatch(
        /^body must be a JSON object or a MessagePack map, /,
      );
      expect(!reply.ok && reply.error.message).toMatch(message);
    },
  );

  it.each([
    ['an array', '[1,2]', /got an array \(JSON\)/],
    ['null', 'null', /got null \(JSON\)/],
    ['a string', ' "task"', /got a string \(JSON\)/],
    ['a number', '42', /got a number \(JSON\)/],
  ] as const)(
    'a JSON body that is %s, not an object, is refused in JSON, saying what is expected',
    async (_name, body, message) => {
      const reply = asJson(await submit(text(body)));
      expect(reply).toMatchObject({ ok: false, error: { code: 'BAD_ENCODING' } });
      expect(!reply.ok && reply.error.message).toMatch(
        /^body must be a JSON object or a MessagePack map, /,
      );
      expect(!reply.ok && reply.error.message).toMatch(message);
      expect(!reply.ok && reply.error.message).not.toMatch(/end of buffer/);
    },
  );

  it('a subject naming no task type is refused in the encoding of the body', async () => {
    const subject = 'baton.other.submit.echo';
    expect(asMsgpack(await submit(pack({ payload: 1 }), { subject }))).toMatchObject({
      ok: false,
      error: { code: 'INVALID_ARGUMENT', field: 'subject' },
    });
    expect(asJson(await submit(text('{"payload":1}'), { subject }))).toMatchObject({
      ok: false,
      error: { code: 'INVALID_ARGUMENT', field: 'subject' },
    });
  });

  it('an empty body is refused in MessagePack, as the status subject answers an empty request', async () => {
    expect(asMsgpack(await submit(new Uint8Array()))).toMatchObject({
      ok: false,
      error: { code: 'BAD_ENCODING' },
    });
  });

  it('a stored submission is acknowledged in its encoding', async () => {
    const ok = { ok: true, id: '1', duplicate: false };
    expect(asMsgpack(await submit(pack({ payload: 1 })))).toEqual(ok);
    expect(asJson(await submit(text('{"payload":1}')))).toEqual(ok);
  });
});
