/**
 * The contract of the bus port, as a reusable suite: every adapter (NATS,
 * PostgreSQL LISTEN/NOTIFY) runs it against a real server.
 *
 * @example
 * describeNats('NatsBus', (url) => busContract('NatsBus', () => createNatsBus({ servers: url })));
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Bus, BusEvent, BusMessage } from '../src/bus/bus.js';
import { BusError } from '../src/bus/errors.js';

const te = new TextEncoder();
const td = new TextDecoder();
export const bytes = (text: string): Uint8Array => te.encode(text);
export const text = (data: Uint8Array): string => td.decode(data);

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  predicate: () => boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A subject prefix of its own per test, so tests (and parallel files) never hear each other. */
export const uniquePrefix = (): string => `baton.t${randomUUID().replaceAll('-', '').slice(0, 12)}`;

/** Runs the bus contract against the adapter `makeBus` builds (each call: a new connection). */
export function busContract(name: string, makeBus: () => Promise<Bus>): void {
  describe(`${name}: bus contract`, () => {
    const open: Bus[] = [];
    const bus = async (): Promise<Bus> => {
      const b = await makeBus();
      open.push(b);
      return b;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((b) => b.close()));
    });

    it('delivers a published message to a subscriber on another connection, bytes intact', async () => {
      const [a, b] = [await bus(), await bus()];
      const p = uniquePrefix();
      const got: BusMessage[] = [];
      await a.subscribe(`${p}.hb.n1`, (m) => {
        got.push(m);
      });
      const payload = new Uint8Array([0, 1, 2, 250, 255]);
      await b.publish(`${p}.hb.n1`, payload);
      await waitFor('the message', () => got.length === 1);
      expect(got[0]?.subject).toBe(`${p}.hb.n1`);
      expect([...(got[0]?.data ?? [])]).toEqual([...payload]);
      expect(got[0]?.reply).toBeUndefined();
      await expect(got[0]?.respond(bytes('ignored'))).resolves.toBeUndefined();
    });

    it('matches wildcards: * one token, > the rest (types with dots)', async () => {
      const [a, b] = [await bus(), await bus()];
      const p = uniquePrefix();
      const star: string[] = [];
      const rest: string[] = [];
      await a.subscribe(`${p}.hb.*`, (m) => {
        star.push(m.subject);
      });
      await a.subscribe(`${p}.submit.>`, (m) => {
        rest.push(m.subject);
      });
      await b.publish(`${p}.hb.n1`, bytes('1'));
      await b.publish(`${p}.hb.n1.extra`, bytes('no'));
      await b.publish(`${p}.submit.email.send`, bytes('2'));
      await b.publish(`${p}.submit.report`, bytes('3'));
      await waitFor('both submissions', () => rest.length === 2 && star.length >= 1);
      await sleep(100);
      expect(star).toEqual([`${p}.hb.n1`]);
      expect(rest.sort()).toEqual([`${p}.submit.email.send`, `${p}.submit.report`]);
    });

    it('answers a request with the responder reply', async () => {
      const [a, b] = [await bus(), await bus()];
      const p = uniquePrefix();
      await a.subscribe(`${p}.status.n1`, async (m) => {
        expect(m.reply).toEqual(expect.any(String));
        await m.respond(bytes(`pong:${text(m.data)}`));
      });
      const reply = await b.request(`${p}.status.n1`, bytes('ping'), { timeoutMs: 2000 });
      expect(text(reply)).toBe('pong:ping');
    });

    it('rejects a request nobody answers with a typed error, in bounded time', async () => {
      const a = await bus();
      const p = uniquePrefix();
      const started = Date.now();
      const error: unknown = await a
        .request(`${p}.status.nobody`, bytes('x'), { timeoutMs: 300 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BusError);
      expect(['TIMEOUT', 'NO_RESPONDERS']).toContain((error as BusError).code);
      expect(Date.now() - started).toBeLessThan(2000);
    });

    it('times out a request whose responder stays silent', async () => {
      const [a, b] = [await bus(), await bus()];
      const p = uniquePrefix();
      await a.subscribe(`${p}.status`, () => {});
      const error: unknown = await b
        .request(`${p}.status`, bytes('x'), { timeoutMs: 200 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BusError);
      expect((error as BusError).code).toBe('TIMEOUT');
    });

    it('gathers one reply from every responder with requestMany, early when the expected count arrived', async () => {
      const [client, ...nodes] = [await bus(), await bus(), await bus(), await bus()];
      const p = uniquePrefix();
      for (const [i, node] of nodes.entries()) {
        await node.subscribe(`${p}.status`, (m) => m.respond(bytes(`n${i}`)));
      }
      const started = Date.now();
      const replies = await client.requestMany(`${p}.status`, bytes('?'), {
        maxWaitMs: 5000,
        expected: 3,
      });
      expect(replies.map(text).sort()).toEqual(['n0', 'n1', 'n2']);
      expect(Date.now() - started).toBeLessThan(4000);

      const all = await client.requestMany(`${p}.status`, bytes('?'), { maxWaitMs: 400 });
      expect(all.map(text).sort()).toEqual(['n0', 'n1', 'n2']);
    });

    it('resolves requestMany with no replies when nobody listens', async () => {
      const a = await bus();
      const replies = await a.requestMany(`${uniquePrefix()}.status`, bytes('?'), {
        maxWaitMs: 200,
      });
      expect(replies).toEqual([]);
    });

    it('delivers each message once across a queue group, and to every plain subscriber', async () => {
      const [pub, ...workers] = [await bus(), await bus(), await bus(), await bus()];
      const p = uniquePrefix();
      const perWorker: string[][] = workers.map(() => []);
      for (const [i, w] of workers.entries()) {
        await w.subscribe(`${p}.dispatch.default`, (m) => void perWorker[i]?.push(text(m.data)), {
          queue: 'workers',
        });
      }
      const everyone: string[] = [];
      await pub.subscribe(`${p}.dispatch.default`, (m) => {
        everyone.push(text(m.data));
      });
      const n = 60;
      for (let i = 0; i < n; i++) await pub.publish(`${p}.dispatch.default`, bytes(String(i)));
      await waitFor('all messages', () => perWorker.flat().length >= n && everyone.length === n);
      await sleep(150);
      const delivered = perWorker.flat();
      expect(delivered).toHaveLength(n);
      expect(new Set(delivered).size).toBe(n);
      expect(everyone).toHaveLength(n);
    });

    it('keeps a subscription alive when its handler throws or rejects, and counts it', async () => {
      const [a, b] = [await bus(), await bus()];
      const p = uniquePrefix();
      const events: BusEvent[] = [];
      a.onEvent((e) => events.push(e));
      const seen: string[] = [];
      await a.subscribe(`${p}.cancel`, async (m) => {
        const body = text(m.data);
        seen.push(body);
        if (body === 'throw') throw new Error('boom');
        if (body === 'reject') await Promise.reject(new Error('async boom'));
      });
      await a.subscribe(`${p}.events.task.completed`, (m) => {
        if (text(m.data) === 'sync-throw') throw new Error('sync boom');
      });
      await b.publish(`${p}.cancel`, bytes('throw'));
      await b.publish(`${p}.cancel`, bytes('reject'));
      await b.publish(`${p}.events.task.completed`, bytes('sync-throw'));
      await b.publish(`${p}.cancel`, bytes('fine'));
      await waitFor(
        'every message and error',
        () => seen.length === 3 && a.status().handlerErrors === 3,
      );
      expect(seen).toEqual(['throw', 'reject', 'fine']);
      expect(events.filter((e) => e.type === 'handler-error')).toHaveLength(3);
    });

    it('stops delivering after unsubscribe', async () => {
      const [a, b] = [await bus(), await bus()];
      const p = uniquePrefix();
      const seen: string[] = [];
      const sub = await a.subscribe(`${p}.cancel`, (m) => {
        seen.push(text(m.data));
      });
      expect(sub.subject).toBe(`${p}.cancel`);
      await b.publish(`${p}.cancel`, bytes('1'));
      await waitFor('the first message', () => seen.length === 1);
      await sub.unsubscribe();
      await sub.unsubscribe();
      await b.publish(`${p}.cancel`, bytes('2'));
      await sleep(200);
      expect(seen).toEqual(['1']);
    });

    it('refuses a message above maxPayload with PAYLOAD_TOO_LARGE', async () => {
      const a = await bus();
      const { maxPayload } = a.status();
      expect(maxPayload).toBeGreaterThan(0);
      await expect(
        a.publish(`${uniquePrefix()}.cancel`, new Uint8Array(maxPayload + 1)),
      ).rejects.toMatchObject({
        code: 'PAYLOAD_TOO_LARGE',
      });
    });

    it('reports its status, and after close refuses work with CLOSED', async () => {
      const a = await bus();
      const events: BusEvent[] = [];
      a.onEvent((e) => events.push(e));
      expect(a.status()).toMatchObject({
        kind: a.kind,
        connected: true,
        reconnects: 0,
        dropped: 0,
        closed: false,
      });
      await a.close();
      await a.close();
      expect(a.status()).toMatchObject({ connected: false, closed: true });
      expect(events.some((e) => e.type === 'closed')).toBe(true);
      await expect(a.publish(`${uniquePrefix()}.cancel`, bytes('x'))).rejects.toMatchObject({
        code: 'CLOSED',
      });
      await expect(a.subscribe(`${uniquePrefix()}.cancel`, () => {})).rejects.toMatchObject({
        code: 'CLOSED',
      });
      await expect(
        a.request(`${uniquePrefix()}.cancel`, bytes('x'), { timeoutMs: 100 }),
      ).rejects.toMatchObject({
        code: 'CLOSED',
      });
    });

    it('lets a running handler finish and reply during close', async () => {
      const [a, b] = [await bus(), await bus()];
      const p = uniquePrefix();
      let started = false;
      await a.subscribe(`${p}.status`, async (m) => {
        started = true;
        await sleep(200);
        await m.respond(bytes('late but here'));
      });
      const reply = b.request(`${p}.status`, bytes('?'), { timeoutMs: 3000 });
      await waitFor('the handler to start', () => started);
      await a.close();
      expect(text(await reply)).toBe('late but here');
    });
  });
}
