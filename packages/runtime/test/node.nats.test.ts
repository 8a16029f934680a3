import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { describeNats, useTestDatabase } from '@baton/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  decodeMessage,
  encodeMessage,
  submitStreamName,
  type BatonNode,
  type NodeStatus,
} from '../src/index.js';
import { testNode } from './nodes.js';

const db = useTestDatabase();

describeNats('a node on NATS', (natsUrl) => {
  const group = `g${Math.random().toString(36).slice(2, 8)}`;
  let node: BatonNode;
  let nc: NatsConnection;
  const seen: string[] = [];

  /** A node of the group (its handlers are added by the caller). */
  const groupNode = (nodeId: string) =>
    testNode(db.url, {
      groupId: group,
      nodeId,
      nats: { servers: natsUrl },
      worker: { pollIntervalMs: 5000 },
    });

  beforeAll(async () => {
    node = groupNode('n1');
    node.handle<{ n: number }>('echo', async (ctx) => {
      seen.push(String(ctx.payload.n));
      return { n: ctx.payload.n * 2 };
    });
    await node.start();
    nc = await connect({ servers: natsUrl });
  });

  afterAll(async () => {
    await nc?.close();
    await node?.shutdown(1000);
  });

  const request = async (subject: string, body: string | Uint8Array) => {
    const msg = await nc.request(subject, body, { timeout: 5000 });
    return JSON.parse(msg.string()) as Record<string, unknown>;
  };

  it('a JSON submission from a plain NATS client is acknowledged after the commit and runs', async () => {
    const reply = await request(
      `baton.${group}.submit.echo`,
      JSON.stringify({ payload: { n: 21 } }),
    );
    expect(reply).toMatchObject({ ok: true, duplicate: false });
    const id = reply.id as string;
    expect(await node.client.get(id)).not.toBeNull(); // durable before the reply
    await expect
      .poll(async () => (await node.client.get(id))?.status, { timeout: 5000 })
      .toBe('completed');
    expect((await node.client.get(id))?.result).toEqual({ n: 42 });
  });

  it('a submission the node can run at once is stored running on it and starts without a claim', async () => {
    const events: { status: string; ids: string[] }[] = [];
    const sub = nc.subscribe(`baton.${group}.events.task.>`, {
      callback: (_e, msg) => {
        const m = decodeMessage(msg.data) as { status: string; tasks: { id: string }[] };
        events.push({ status: m.status, ids: m.tasks.map((t) => t.id) });
      },
    });
    await nc.flush();
    const reply = await request(
      `baton.${group}.submit.echo`,
      JSON.stringify({ payload: { n: 5 } }),
    );
    expect(reply).toMatchObject({ ok: true, duplicate: false });
    const id = reply.id as string;
    await expect
      .poll(async () => (await node.client.get(id))?.status, { timeout: 5000 })
      .toBe('completed');
    const task = (await node.client.get(id))!;
    // Inserted running, leased to this node, in one statement: one timestamp for all three.
    expect(task).toMatchObject({ attempt: 1, leaseOwner: 'n1', result: { n: 10 } });
    expect(task.claimedAt).toEqual(task.createdAt);
    expect(task.startedAt).toEqual(task.createdAt);
    // Its lifecycle events are published like a claimed task's, in order.
    await expect
      .poll(() => events.filter((e) => e.ids.includes(id)).map((e) => e.status))
      .toEqual(['claimed', 'running', 'completed']);
    sub.unsubscribe();
    // Due later: stored pending, claimed when due.
    const later = await request(
      `baton.${group}.submit.echo`,
      JSON.stringify({ payload: { n: 6 }, delayMs: 50 }),
    );
    await expect
      .poll(async () => (await node.client.get(later.id as string))?.status, { timeout: 10_000 })
      .toBe('completed');
    const claimed = (await node.client.get(later.id as string))!;
    expect(claimed.claimedAt!.getTime()).toBeGreaterThan(claimed.createdAt.getTime());
  });

  it('malformed submissions get error replies naming the problem, nothing is stored, the node still serves', async () => {
    const before = await node.client.counts();
    const cases: [string, string, string][] = [
      ['echo', '{not json', 'BAD_ENCODING'],
      ['echo', '[1,2]', 'BAD_ENCODING'],
      ['echo', JSON.stringify({ payload: 1, priority: 'high' }), 'INVALID_ARGUMENT'],
      ['echo', JSON.stringify({ payload: 1, colour: 'red' }), 'INVALID_ARGUMENT'],
      ['echo', JSON.stringify({ payload: 1, runAt: 'someday' }), 'INVALID_ARGUMENT'],
      ['echo', JSON.stringify({ payload: 'x'.repeat(300_000) }), 'PAYLOAD_TOO_LARGE'],
      // Text PostgreSQL's jsonb refuses, and a date its timestamptz cannot hold.
      ['echo', '{"payload":{"name":"\\ud800"}}', 'INVALID_ARGUMENT'],
      ['echo', '{"payload":1,"runAt":"-010000-01-01T00:00:00Z"}', 'INVALID_ARGUMENT'],
      ['echo', '{"payload":1,"idempotencyKey":"k\\u0000"}', 'INVALID_ARGUMENT'],
    ];
    for (const [type, body, code] of cases) {
      const reply = await request(`baton.${group}.submit.${type}`, body);
      expect(reply, body.slice(0, 40)).toMatchObject({ ok: false, error: { code } });
    }
    const field = await request(`baton.${group}.submit.echo`, JSON.stringify({ maxAttempts: -3 }));
    expect(field).toMatchObject({ ok: false, error: { field: 'maxAttempts' } });
    const path = await request(`baton.${group}.submit.echo`, '{"payload":{"a":[1,"\\u0000"]}}');
    expect(path).toMatchObject({ ok: false, error: { field: 'payload.a[1]' } });
    expect(await node.client.counts()).toEqual(before);
    const ok = await request(`baton.${group}.submit.echo`, JSON.stringify({ payload: { n: 1 } }));
    expect(ok.ok).toBe(true);
  });

  it('a MessagePack submitter gets its errors in MessagePack: a body too large, a top level not a map', async () => {
    const cases: [unknown, string][] = [
      [{ payload: 'x'.repeat(300_000) }, 'PAYLOAD_TOO_LARGE'],
      [[1, 2], 'BAD_ENCODING'],
      [{ payload: 1, colour: 'red' }, 'INVALID_ARGUMENT'],
    ];
    for (const [body, code] of cases) {
      const msg = await nc.request(`baton.${group}.submit.echo`, encodeMessage(body), {
        timeout: 5000,
      });
      expect(decodeMessage(msg.data), code).toMatchObject({ ok: false, error: { code } });
    }
  });

  it('a bad submission among others sent at once fails alone', async () => {
    const replies = await Promise.all(
      [700, 701, 'bad', 702].map((n) =>
        request(
          `baton.${group}.submit.echo`,
          n === 'bad' ? '{"payload":{"n":"\\udc00"}}' : JSON.stringify({ payload: { n } }),
        ),
      ),
    );
    expect(replies.map((r) => r.ok)).toEqual([true, true, false, true]);
    expect(replies[2]).toMatchObject({ error: { code: 'INVALID_ARGUMENT', field: 'payload.n' } });
    await expect.poll(() => ['700', '701', '702'].every((n) => seen.includes(n))).toBe(true);
  });

  it('a stream message whose Nats-Msg-Id is longer than a key may be is stored under a digest of it', async () => {
    const js = jetstream(nc);
    const msgID = `m-${'x'.repeat(300)}`;
    const body = JSON.stringify({ payload: { n: 501 } });
    await js.publish(`baton.${group}.js.submit.echo`, body, { msgID });
    await expect.poll(() => seen.includes('501'), { timeout: 10_000 }).toBe(true);
    const { rows } = await db
      .pool()
      .query<{ idempotency_key: string }>(
        `select idempotency_key from baton.tasks where payload->>'n' = '501'`,
      );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.idempotency_key).toMatch(/^js:msgid:sha256:[0-9a-f]{64}$/);
  });

  it('the status subject shows the four actors with their states', async () => {
    const msg = await nc.request(`baton.${group}.status.n1`, new Uint8Array(0), { timeout: 5000 });
    const status = decodeMessage(msg.data) as NodeStatus;
    expect(status.nodeId).toBe('n1');
    expect(status.bus.kind).toBe('nats');
    expect(status.submitStream).toBe('active');
    expect(status.actors.supervisor.state).toBe('running');
    for (const name of ['worker', 'scheduler', 'watchdog'] as const) {
      expect(status.actors[name], name).not.toBeNull();
      expect(status.actors[name]!.status).toBe('active');
    }
    expect(status.actors.worker!.context).toMatchObject({ concurrency: 32 });
  });

  it('a submit stream deleted under a running node is created again, and what is published to it runs', async () => {
    await (await jetstreamManager(nc)).streams.delete(submitStreamName(group));
    const js = jetstream(nc);
    // Refused ("no stream") until the node has created the stream again.
    await expect
      .poll(
        () =>
          js.publish(`baton.${group}.js.submit.echo`, JSON.stringify({ payload: { n: 401 } })).then(
            () => true,
            () => false,
          ),
        { timeout: 15_000, interval: 200 },
      )
      .toBe(true);
    await expect.poll(() => seen.includes('401'), { timeout: 15_000 }).toBe(true);
  });

  // Last: it stops n1. A message without Nats-Msg-Id is keyed by its stream
  // sequence and store time; by the sequence alone, the first message of a
  // stream created again would be taken for the old task of its sequence.
  it('a message on the JetStream submit stream becomes a task, and stays a new one after the stream is created again', async () => {
    const subject = `baton.${group}.js.submit.echo`;
    const js = jetstream(nc);
    const first = await js.publish(subject, JSON.stringify({ payload: { n: 301 } }));
    await expect.poll(() => seen.includes('301'), { timeout: 10_000 }).toBe(true);
    await node.shutdown(1000);
    await (await jetstreamManager(nc)).streams.delete(submitStreamName(group));
    const again = groupNode('n2');
    again.handle<{ n: number }>('echo', (ctx) => {
      seen.push(String(ctx.payload.n));
    });
    try {
      await again.start();
      const second = await js.publish(subject, JSON.stringify({ payload: { n: 302 } }));
      // A sequence the stream has given before (to this test's first message or an earlier one).
      expect(second.seq).toBeLessThanOrEqual(first.seq);
      await expect.poll(() => seen.includes('302'), { timeout: 10_000 }).toBe(true);
      const keys = await db
        .pool()
        .query<{ idempotency_key: string }>(
          `select idempotency_key from baton.tasks where payload->>'n' in ('301', '302')`,
        );
      expect(keys.rows).toHaveLength(2);
    } finally {
      await again.shutdown(1000);
    }
  });
});
