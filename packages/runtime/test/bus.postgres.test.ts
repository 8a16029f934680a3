/**
 * The PostgreSQL LISTEN/NOTIFY adapter against a real PostgreSQL (this
 * file's own migrated database): the bus contract, then what is specific to
 * it: queue groups across separate buses, the LISTEN connection killed and
 * reconnected, large bodies by reference, names refused, no connection left.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  NotifyStore,
  PayloadTooLargeError,
  quoteChannel,
  quoteSchema,
  validateChannel,
} from '@baton/store';
import { useTestDatabase } from '@baton/testkit';
import type { BusEvent } from '../src/bus/bus.js';
import { BusError } from '../src/bus/errors.js';
import { createPostgresBus, type PostgresBus } from '../src/bus/postgres.bus.js';
import {
  ChannelNames,
  parseSubscribeSubject,
  subjectMatches,
} from '../src/bus/postgres.channels.js';
import { compilePostgresBusOptions, type PostgresBusOptions } from '../src/bus/postgres.options.js';
import { busContract, bytes, sleep, text, uniquePrefix, waitFor } from './bus.contract.js';

const db = useTestDatabase();
let adminPool: ReturnType<typeof db.pool> | undefined;
/** One pool for the tests' own queries, ended by the testkit after the file. */
const admin = () => (adminPool ??= db.pool({ max: 2, application_name: 'bus-test-admin' }));

/** Fast reconnects for tests; production defaults are slower. */
const FAST = { reconnectDelayMs: 50, reconnectMaxDelayMs: 500, closeGraceMs: 2000 } as const;

busContract('PostgresBus', () =>
  createPostgresBus({ connectionString: db.url, applicationName: 'baton-bus-contract', ...FAST }),
);

/** Throws what `fn` throws (sync or async), or fails. */
async function thrown(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

const appName = (): string => `bt-${Math.random().toString(36).slice(2, 10)}`;

describe('PostgresBus', () => {
  const open: PostgresBus[] = [];
  const bus = async (options: Partial<PostgresBusOptions> = {}): Promise<PostgresBus> => {
    const b = await createPostgresBus({ connectionString: db.url, ...FAST, ...options });
    open.push(b);
    return b;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((b) => b.close()));
  });

  const backends = async (applicationName: string): Promise<number[]> => {
    const { rows } = await admin().query<{ pid: number }>(
      `select pid from pg_stat_activity where datname = current_database() and application_name = $1`,
      [applicationName],
    );
    return rows.map((r) => r.pid);
  };

  it('delivers each queue-group message once across two buses, each with its own connections', async () => {
    const [pub, nodeA, nodeB] = [await bus(), await bus(), await bus()];
    const p = uniquePrefix();
    const byMember: Record<string, string[]> = { a1: [], a2: [], b1: [] };
    const member = (name: string) => (m: { data: Uint8Array }) =>
      void byMember[name]?.push(text(m.data));
    await nodeA.subscribe(`${p}.dispatch.default`, member('a1'), { queue: 'workers' });
    await nodeA.subscribe(`${p}.dispatch.*`, member('a2'), { queue: 'workers' });
    await nodeB.subscribe(`${p}.dispatch.default`, member('b1'), { queue: 'workers' });
    const watchers: string[] = [];
    await nodeB.subscribe(`${p}.dispatch.>`, (m) => void watchers.push(text(m.data)));
    const n = 200;
    await Promise.all(
      Array.from({ length: n }, (_, i) => pub.publish(`${p}.dispatch.default`, bytes(String(i)))),
    );
    await waitFor(
      'every message once',
      () => Object.values(byMember).flat().length >= n && watchers.length === n,
    );
    await sleep(300);
    const delivered = Object.values(byMember).flat();
    expect(delivered).toHaveLength(n);
    expect(new Set(delivered).size).toBe(n);
    // Both processes' worth of members took part, and both members of node A.
    const perNode = { a: byMember.a1!.length + byMember.a2!.length, b: byMember.b1!.length };
    expect(perNode.a).toBeGreaterThan(0);
    expect(perNode.b).toBeGreaterThan(0);
    expect(byMember.a1!.length).toBeGreaterThan(0);
    expect(byMember.a2!.length).toBeGreaterThan(0);
    const { rows } = await admin().query<{ n: number }>(
      `select count(*)::int as n from baton.bus_claims where queue_group = 'workers'`,
    );
    expect(rows[0]?.n).toBeGreaterThanOrEqual(n);
  });

  it('under a flood, runs at most maxConcurrentReads claims, queues maxQueuedReads, and drops the rest (counted, reported)', async () => {
    const pub = await bus();
    const node = await bus({ maxConcurrentReads: 1, maxQueuedReads: 5 });
    const events: BusEvent[] = [];
    node.onEvent((e) => events.push(e));
    const p = uniquePrefix();
    const got: string[] = [];
    await node.subscribe(`${p}.submit.>`, (m) => void got.push(text(m.data)), { queue: 'nodes' });
    // Claims wait on this lock: one runs (and waits), five queue, the rest are dropped.
    const blocker = await admin().connect();
    try {
      await blocker.query('begin');
      await blocker.query('lock table baton.bus_claims in share row exclusive mode');
      const n = 300;
      await Promise.all(
        Array.from({ length: n }, (_, i) => pub.publish(`${p}.submit.x`, bytes(String(i)))),
      );
      await waitFor('the flood to be dropped', () => node.status().dropped === n - 6);
      expect(got).toEqual([]);
      await blocker.query('commit');
    } finally {
      blocker.release();
    }
    await waitFor('the claimed and queued ones delivered', () => got.length === 6);
    await sleep(200);
    expect(got).toHaveLength(6);
    expect(node.status().dropped).toBe(294);
    const reported = events.filter((e) => e.type === 'error');
    // Reported, at most once a second: not once per dropped message.
    expect(reported.length).toBeGreaterThanOrEqual(1);
    expect(reported.length).toBeLessThanOrEqual(5);
    expect(String((reported[0] as { error: Error }).error.message)).toMatch(
      /receiving faster than the database answers: dropped a message on .*\.submit\.x/,
    );
    // The flood over, the bus receives again.
    await pub.publish(`${p}.submit.x`, bytes('after'));
    await waitFor('the message after the flood', () => got.includes('after'));
  });

  it('a closing bus claims no more queue-group messages: its waiting ones are left to the other members', async () => {
    const pub = await bus();
    const closing = await bus({ maxConcurrentReads: 1 });
    const staying = await bus();
    const p = uniquePrefix();
    const got: string[] = [];
    await closing.subscribe(`${p}.submit.>`, (m) => void got.push(`closing:${text(m.data)}`), {
      queue: 'nodes',
    });
    await staying.subscribe(`${p}.submit.>`, (m) => void got.push(`staying:${text(m.data)}`), {
      queue: 'nodes',
    });
    const blocker = await admin().connect();
    let closed: Promise<void>;
    try {
      await blocker.query('begin');
      await blocker.query('lock table baton.bus_claims in share row exclusive mode');
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => pub.publish(`${p}.submit.x`, bytes(String(i)))),
      );
      await sleep(300); // every message heard, every claim waiting on the lock
      closed = closing.close();
      await sleep(50);
    } finally {
      await blocker.query('commit');
      blocker.release();
    }
    await closed;
    // The one claim the closing bus had sent may have won its message; no other.
    await waitFor('the staying member to take the rest', () => got.length >= 39);
    await sleep(200);
    expect(got.filter((g) => g.startsWith('closing:'))).toEqual([]);
    expect(got.length).toBeGreaterThanOrEqual(39);
  });

  it('reconnects after its LISTEN backend is terminated, and its subscriptions keep receiving', async () => {
    const applicationName = appName();
    const sub = await bus({ applicationName });
    const pub = await bus();
    const events: BusEvent['type'][] = [];
    sub.onEvent((e) => events.push(e.type));
    const p = uniquePrefix();
    const got: string[] = [];
    const queued: string[] = [];
    await sub.subscribe(`${p}.dispatch.default`, (m) => void got.push(text(m.data)));
    await sub.subscribe(`${p}.submit.>`, (m) => void queued.push(text(m.data)), { queue: 'nodes' });
    await sub.subscribe(`${p}.status`, (m) => m.respond(bytes('alive')));
    await pub.publish(`${p}.dispatch.default`, bytes('before'));
    await waitFor('the message before the kill', () => got.includes('before'));

    const [listener, ...others] = await backends(`${applicationName}-listener`);
    expect(listener).toBeDefined();
    expect(others).toEqual([]);
    await admin().query('select pg_terminate_backend($1)', [listener]);
    await waitFor('the reconnect', () => sub.status().reconnects === 1, 15_000);
    expect(events).toEqual(expect.arrayContaining(['disconnected', 'reconnecting', 'reconnected']));
    expect(events.indexOf('disconnected')).toBeLessThan(events.indexOf('reconnected'));
    expect(sub.status()).toMatchObject({ connected: true, reconnects: 1, closed: false });
    const [again] = await backends(`${applicationName}-listener`);
    expect(again).toBeDefined();
    expect(again).not.toBe(listener);

    for (let i = 0; i < 20; i++) await pub.publish(`${p}.dispatch.default`, bytes(`after-${i}`));
    await pub.publish(`${p}.submit.email.send`, bytes('queued-after'));
    expect(text(await pub.request(`${p}.status`, bytes('?'), { timeoutMs: 3000 }))).toBe('alive');
    // Its own requests too: the reply inbox is listened to again.
    await pub.subscribe(`${p}.status.pub`, (m) => m.respond(bytes('pub-alive')));
    expect(text(await sub.request(`${p}.status.pub`, bytes('?'), { timeoutMs: 3000 }))).toBe(
      'pub-alive',
    );
    await waitFor(
      'every message after the reconnect',
      () => got.filter((g) => g.startsWith('after-')).length === 20 && queued.length === 1,
    );
    expect(queued).toEqual(['queued-after']);
  });

  it('subscribes while disconnected (heard after the reconnect), and closes while reconnecting', async () => {
    const applicationName = appName();
    const slow = { reconnectDelayMs: 800, reconnectMaxDelayMs: 1000 };
    const sub = await bus({ applicationName, ...slow });
    const pub = await bus();
    const p = uniquePrefix();
    const kill = async () => {
      await admin().query(
        `select pg_terminate_backend(pid) from pg_stat_activity
          where datname = current_database() and application_name = $1`,
        [`${applicationName}-listener`],
      );
      await waitFor('the disconnect', () => !sub.status().connected);
    };
    await kill();
    const got: string[] = [];
    await sub.subscribe(`${p}.cancel`, (m) => void got.push(text(m.data)));
    await waitFor('the reconnect', () => sub.status().reconnects === 1, 15_000);
    await pub.publish(`${p}.cancel`, bytes('after'));
    await waitFor('the message', () => got.length === 1);

    await kill();
    const started = Date.now();
    await sub.close();
    expect(Date.now() - started).toBeLessThan(700);
    expect(sub.status()).toMatchObject({ connected: false, closed: true, reconnects: 1 });
    await expect
      .poll(async () => (await backends(`${applicationName}-listener`)).length, { timeout: 5000 })
      .toBe(0);
  });

  it('carries bodies too large for one NOTIFY by reference, intact, and sweeps them', async () => {
    const [a, b] = [await bus({ retentionMs: 2000 }), await bus()];
    const p = uniquePrefix();
    const seen: Uint8Array[] = [];
    const queued: Uint8Array[] = [];
    await a.subscribe(`${p}.events.task.*`, (m) => void seen.push(m.data));
    await a.subscribe(`${p}.events.>`, (m) => void queued.push(m.data), { queue: 'q' });
    await a.subscribe(`${p}.status`, (m) => m.respond(m.data.slice().reverse()));
    const sizes = [0, 5800, 5900, 6000, 100_000, b.status().maxPayload];
    const bodies = sizes.map((size) =>
      Uint8Array.from({ length: size }, (_, i) => (i * 31 + size) % 256),
    );
    for (const body of bodies) await b.publish(`${p}.events.task.completed`, body);
    await waitFor(
      'every body',
      () => seen.length === bodies.length && queued.length === bodies.length,
    );
    // Compared as hex digests: element-wise deep equality of 1 MiB arrays is slow.
    const digests = (list: Uint8Array[]) =>
      [...list]
        .sort((x, y) => x.length - y.length)
        .map((d) => `${d.length}:${createHash('sha256').update(d).digest('hex')}`);
    expect(digests(seen)).toEqual(digests(bodies));
    expect(digests(queued)).toEqual(digests(bodies));

    // A large request and a large reply.
    const big = bodies[4]!;
    const reply = await b.request(`${p}.status`, big, { timeoutMs: 3000 });
    expect(Buffer.compare(reply, big.slice().reverse())).toBe(0);

    const stored = async () =>
      (await admin().query<{ n: number }>('select count(*)::int as n from baton.bus_payloads'))
        .rows[0]?.n ?? 0;
    // The large request and its reply were stored just now, then swept by bus a.
    expect(await stored()).toBeGreaterThanOrEqual(2);
    await expect.poll(stored, { timeout: 10_000, interval: 200 }).toBe(0);
  });

  it('refuses a body above maxPayloadBytes with PayloadTooLargeError naming the limit', async () => {
    const a = await bus({ maxPayloadBytes: 64 * 1024 });
    expect(a.status().maxPayload).toBe(64 * 1024);
    const p = uniquePrefix();
    const error = await thrown(() => a.publish(`${p}.cancel`, new Uint8Array(64 * 1024 + 1)));
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect(error).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      fields: { field: 'data', size: 64 * 1024 + 1, limit: 64 * 1024 },
    });
    expect((error as Error).message).toContain(String(64 * 1024));
    await expect(
      a.request(`${p}.status`, new Uint8Array(64 * 1024 + 1), { timeoutMs: 100 }),
    ).rejects.toBeInstanceOf(PayloadTooLargeError);
    // A responder's oversize reply fails in the handler: counted, the bus goes on.
    await a.subscribe(`${p}.status`, (m) => m.respond(new Uint8Array(64 * 1024 + 1)));
    await expect(a.request(`${p}.status`, bytes('?'), { timeoutMs: 300 })).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
    await waitFor('the handler error', () => a.status().handlerErrors === 1);
  });

  it('refuses bad subjects and queue names by name, before any SQL', async () => {
    const a = await bus();
    const cases: Array<[() => Promise<unknown>, string]> = [
      [() => a.subscribe('baton.*.hb', () => {}), 'subject'],
      [() => a.subscribe('baton.>', () => {}), 'subject'],
      [() => a.subscribe('>', () => {}), 'subject'],
      [() => a.subscribe('baton.g.>.x', () => {}), 'subject'],
      [() => a.subscribe('baton..g', () => {}), 'subject'],
      [() => a.subscribe('baton.g.hb', () => {}, { queue: 'two words' }), 'queue'],
      [() => a.subscribe('baton.g.hb', () => {}, { queue: '' }), 'queue'],
      [() => a.publish('baton.g.*', bytes('x')), 'subject'],
      [() => a.publish('baton.g.>', bytes('x')), 'subject'],
      [() => a.publish('baton g', bytes('x')), 'subject'],
      [() => a.publish('', bytes('x')), 'subject'],
      [() => a.publish(`baton.g.${'x'.repeat(600)}`, bytes('x')), 'subject'],
      [() => a.request('baton.g.', bytes('x'), { timeoutMs: 100 }), 'subject'],
      [() => a.request('baton.g.status', bytes('x'), { timeoutMs: -1 }), 'timeoutMs'],
      [() => a.requestMany('baton.*', bytes('x'), { maxWaitMs: 100 }), 'subject'],
    ];
    for (const [fn, field] of cases) {
      const error = await thrown(fn);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', fields: { field } });
    }
    // The bus is unharmed.
    const p = uniquePrefix();
    await a.subscribe(`${p}.status`, (m) => m.respond(bytes('ok')));
    expect(text(await a.request(`${p}.status`, bytes('?'), { timeoutMs: 2000 }))).toBe('ok');
  });

  it('refuses bad channel names in the store, and quotes good ones', async () => {
    expect(quoteChannel('baton_bus_abc')).toBe('"baton_bus_abc"');
    for (const bad of ['Bad', 'a-b', 'a"; drop table x; --', '', '1abc', 'x'.repeat(64)]) {
      expect(() => validateChannel(bad)).toThrow(InvalidArgumentError);
      const error = await thrown(() => NotifyStore.listen({ query: () => Promise.resolve() }, bad));
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', fields: { field: 'channel' } });
    }
    const store = new NotifyStore(admin(), quoteSchema('baton'));
    expect(await thrown(() => store.notify('no way', 'x'))).toMatchObject({
      fields: { field: 'channel' },
    });
    expect(await thrown(() => store.notify('baton_bus_x', 'x'.repeat(8000)))).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      fields: { field: 'payload', limit: 7999 },
    });
    // A claim is won once per (message, group).
    expect(await store.claim(42, 'g')).toBe(true);
    expect(await store.claim(42, 'g')).toBe(false);
    expect(await store.claim(42, 'h')).toBe(true);
    expect(await store.sweep(0)).toMatchObject({ claims: expect.any(Number) as number });
    expect(await store.claim(42, 'g')).toBe(true);
  });

  it('names channels per subject root within 63 bytes, and filters wildcards in process', () => {
    const channels = new ChannelNames('baton_bus');
    const long = `baton.${'g'.repeat(128)}`;
    for (const root of ['baton.orders', long, '_INBOX.abc', 'x']) {
      const channel = channels.of(root);
      expect(validateChannel(channel)).toBe(channel);
      expect(Buffer.byteLength(channel)).toBeLessThanOrEqual(63);
      expect(channels.of(root)).toBe(channel);
    }
    expect(channels.of('baton.orders')).toMatch(/^baton_bus_[0-9a-f]{12}_baton_orders$/);
    expect(channels.of('baton.orders')).not.toBe(channels.of('baton.Orders'));
    expect(channels.of(long)).not.toBe(channels.of(`${long}h`));
    const t = (s: string) => parseSubscribeSubject(s).tokens;
    expect(subjectMatches(t('baton.g.hb.*'), 'baton.g.hb.n1'.split('.'))).toBe(true);
    expect(subjectMatches(t('baton.g.hb.*'), 'baton.g.hb.n1.x'.split('.'))).toBe(false);
    expect(subjectMatches(t('baton.g.submit.>'), 'baton.g.submit.a.b'.split('.'))).toBe(true);
    expect(subjectMatches(t('baton.g.submit.>'), 'baton.g.submit'.split('.'))).toBe(false);
    expect(subjectMatches(t('baton.g'), 'baton.g'.split('.'))).toBe(true);
  });

  it('does not hear buses with another channel prefix, nor foreign NOTIFYs on its channel', async () => {
    const a = await bus({ channelPrefix: 'bus_one' });
    const b = await bus({ channelPrefix: 'bus_two' });
    const p = uniquePrefix();
    const got: string[] = [];
    const errors: Error[] = [];
    a.onEvent((e) => e.type === 'error' && errors.push(e.error));
    await a.subscribe(`${p}.cancel`, (m) => void got.push(text(m.data)));
    await b.publish(`${p}.cancel`, bytes('other prefix'));
    const channel = new ChannelNames('bus_one').of(p);
    await admin().query('select pg_notify($1, $2)', [channel, 'not an envelope!']);
    await a.publish(`${p}.cancel`, bytes('same prefix'));
    await waitFor('the message', () => got.length === 1);
    await waitFor('the foreign NOTIFY reported', () => errors.length === 1);
    await sleep(100);
    expect(got).toEqual(['same prefix']);
    expect(errors[0]).toMatchObject({ code: 'BAD_ENCODING' });
  });

  it('fails to start with CONNECT_FAILED, leaving no connection, when it cannot work', async () => {
    const missing = await thrown(() =>
      createPostgresBus({
        connectionString: db.url,
        schema: 'no_bus_here',
        applicationName: 'bt-nobus',
      }),
    );
    expect(missing).toBeInstanceOf(BusError);
    expect(missing).toMatchObject({ code: 'CONNECT_FAILED', fields: { schema: 'no_bus_here' } });
    expect((missing as Error).message).toContain('000002');
    const url = new URL(db.url);
    url.port = '1';
    const refused = await thrown(() =>
      createPostgresBus({ connectionString: url.toString(), connectTimeoutMs: 2000 }),
    );
    expect(refused).toMatchObject({ code: 'CONNECT_FAILED' });
    expect(await backends('bt-nobus')).toEqual([]);
    expect(await backends('bt-nobus-listener')).toEqual([]);
  });

  it('a request whose send waits for a busy pool ends at its timeout, or at close, and never crashes the process', async () => {
    const applicationName = appName();
    const shared = db.pool({ max: 2, application_name: `${applicationName}-shared` });
    const b = await bus({ pool: shared, applicationName });
    const p = uniquePrefix();
    await b.subscribe(`${p}.status`, (m) => m.respond(bytes('ok')));
    // Every connection of the pool the bus sends on is busy for two seconds.
    const hold = () =>
      Promise.all([shared.query('select pg_sleep(2)'), shared.query('select pg_sleep(2)')]);
    let freed = false;
    let busy = hold().then(() => (freed = true));
    const timedOut = await thrown(() => b.request(`${p}.status`, bytes('?'), { timeoutMs: 200 }));
    expect(timedOut).toMatchObject({ code: 'TIMEOUT' });
    expect(freed).toBe(false); // it did not wait for a connection past its timeout
    await busy;
    // Closed while its send waits: the request rejects (unhandled, it used to end the process).
    busy = hold().then(() => true);
    const pending = b.request(`${p}.status`, bytes('?'), { timeoutMs: 10_000 });
    pending.catch(() => undefined);
    await sleep(50);
    await Promise.all([b.close(), busy]);
    expect(await thrown(() => pending)).toMatchObject({ code: 'CLOSED' });
  });

  it('closes every connection it opened, and leaves a pool it was given open', async () => {
    const applicationName = appName();
    const shared = db.pool({ max: 2, application_name: `${applicationName}-shared` });
    const own = await createPostgresBus({ connectionString: db.url, applicationName, ...FAST });
    // Only a pool: the LISTEN connection copies its connection settings.
    const guest = await createPostgresBus({
      pool: shared,
      applicationName: `${applicationName}-g`,
      ...FAST,
    });
    const p = uniquePrefix();
    await own.subscribe(`${p}.status`, (m) => m.respond(bytes('own')));
    expect(text(await guest.request(`${p}.status`, bytes('?'), { timeoutMs: 2000 }))).toBe('own');
    expect(await backends(`${applicationName}-listener`)).toHaveLength(1);
    expect((await backends(applicationName)).length).toBeGreaterThan(0);
    await Promise.all([own.close(), guest.close()]);
    // A backend leaves pg_stat_activity a moment after its client hung up.
    const gone = async () =>
      [
        ...(await backends(`${applicationName}-listener`)),
        ...(await backends(applicationName)),
        ...(await backends(`${applicationName}-g-listener`)),
      ].length;
    await expect.poll(gone, { timeout: 5000, interval: 50 }).toBe(0);
    await expect(shared.query('select 1 as one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
  });
});

describe('PostgresBus options', () => {
  it('compiles defaults once, frozen', () => {
    const compiled = compilePostgresBusOptions({ connectionString: 'postgres://x/y' });
    expect(compiled).toMatchObject({
      schema: 'baton',
      channelPrefix: 'baton_bus',
      applicationName: 'baton-bus',
      maxPayloadBytes: 1024 * 1024,
      retentionMs: 60_000,
      closeGraceMs: 5000,
    });
    expect(compiled.listener).toMatchObject({ application_name: 'baton-bus-listener' });
    expect(compiled.poolConfig).toMatchObject({ application_name: 'baton-bus', max: 4 });
    expect(Object.isFrozen(compiled)).toBe(true);
    expect(Object.isFrozen(compiled.listener)).toBe(true);
  });

  it('keeps the listener suffix within 63 bytes of application_name', () => {
    const name = `baton-bus:${'n'.repeat(60)}`.slice(0, 63);
    const { listener, poolConfig } = compilePostgresBusOptions({
      connectionString: 'postgres://x/y',
      applicationName: name,
    });
    expect(poolConfig?.application_name).toBe(name);
    expect(listener.application_name).toHaveLength(63);
    expect(listener.application_name).toMatch(/^baton-bus:n+-listener$/);
  });

  it.each([
    [{}, 'postgresBus.connectionString'],
    [{ connectionString: '' }, 'postgresBus.connectionString'],
    [{ connectionString: 'postgres://x', connection: { host: 'x' } }, 'postgresBus.connection'],
    [{ connectionString: 'postgres://x', schema: 'Bad Schema' }, 'postgresBus.schema'],
    [
      { connectionString: 'postgres://x', channelPrefix: 'Bad-Prefix' },
      'postgresBus.channelPrefix',
    ],
    [
      { connectionString: 'postgres://x', channelPrefix: 'p'.repeat(41) },
      'postgresBus.channelPrefix',
    ],
    [
      { connectionString: 'postgres://x', applicationName: 'x'.repeat(64) },
      'postgresBus.applicationName',
    ],
    [
      { connectionString: 'postgres://x', applicationName: 'tab\there' },
      'postgresBus.applicationName',
    ],
    [{ pool: {} as never }, 'postgresBus.pool'],
    [{ connectionString: 'postgres://x', maxPayloadBytes: 0 }, 'postgresBus.maxPayloadBytes'],
    [{ connectionString: 'postgres://x', retentionMs: 1.5 }, 'postgresBus.retentionMs'],
    [
      { connectionString: 'postgres://x', reconnectDelayMs: 500, reconnectMaxDelayMs: 100 },
      'postgresBus.reconnectMaxDelayMs',
    ],
  ] as [PostgresBusOptions, string][])('rejects %j naming %s', (options, field) => {
    const error: unknown = (() => {
      try {
        compilePostgresBusOptions(options);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', fields: { field } });
    expect((error as Error).message).toContain(field);
  });
});
