/**
 * A node on a nats-server without JetStream (this file starts its own): the
 * JetStream submission stream is an extra way in, so the node starts without
 * it, unless `nats.jetstream` requires it.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { natsServerOnPath, OwnedNatsServer, useTestDatabase } from '@baton/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, decodeMessage, type NatsOptions, type NodeStatus } from '../src/index.js';
import { testNode } from './nodes.js';

const db = useTestDatabase();

const serverOnPath = natsServerOnPath();
// Under CI a missing nats-server fails this suite instead of skipping it.
const describeOwned = serverOnPath || process.env.CI ? describe : describe.skip;
if (!serverOnPath)
  console.warn('[baton tests] NOT RUN (needs nats-server on PATH): a node without JetStream');

describeOwned('a node on a NATS server without JetStream (own nats-server)', () => {
  let server: OwnedNatsServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await OwnedNatsServer.start(undefined, { jetstream: false });
    nc = await connect({ servers: server.url });
  });

  afterAll(async () => {
    await nc?.close();
    await server?.[Symbol.asyncDispose]();
  });

  /** A node of its own group on the server, its warnings and errors kept. */
  const nodeOn = (jetstream?: NatsOptions['jetstream']) => {
    const group = `j${Math.random().toString(36).slice(2, 8)}`;
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      level: 'warn',
      nodeId: 'j1',
      groupId: group,
      destination: {
        write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>),
      },
    });
    const node = testNode(
      db.url,
      {
        groupId: group,
        nodeId: 'j1',
        nats: { servers: server.url, ...(jetstream === undefined ? {} : { jetstream }) },
        worker: { pollIntervalMs: 5000 },
      },
      { logger },
    );
    return { node, group, lines };
  };

  it('by default the node starts without the stream, warns once, and serves request/reply submissions', async () => {
    const { node, group, lines } = nodeOn();
    const ran: number[] = [];
    node.handle<{ n: number }>('echo', (ctx) => {
      ran.push(ctx.payload.n);
      return { n: ctx.payload.n * 2 };
    });
    try {
      await node.start();
      expect(node.lifecycle).toBe('running');
      const warnings = lines.filter((l) => /JetStream/.test(String(l.msg)));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ level: 'warn', option: 'nats.jetstream' });
      expect(warnings[0]!.msg).toMatch(/JetStream disabled.*nats-server -js/);
      const reply = await nc.request(
        `baton.${group}.submit.echo`,
        JSON.stringify({ payload: { n: 21 } }),
        { timeout: 5000 },
      );
      const body = JSON.parse(reply.string()) as { ok: boolean; id: string };
      expect(body).toMatchObject({ ok: true, duplicate: false });
      await expect
        .poll(async () => (await node.client.get(body.id))?.status, { timeout: 5000 })
        .toBe('completed');
      expect(ran).toEqual([21]);
      // The status says why the stream is not consumed, on the subject as in code.
      expect(node.status().submitStream).toBe('unavailable');
      const msg = await nc.request(`baton.${group}.status.j1`, new Uint8Array(0), {
        timeout: 5000,
      });
      expect((decodeMessage(msg.data) as NodeStatus).submitStream).toBe('unavailable');
    } finally {
      await node.shutdown(1000);
    }
  });

  it('with nats.jetstream true the start fails, naming the option', async () => {
    const { node } = nodeOn(true);
    const error: unknown = await node.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({
      code: 'JETSTREAM_DISABLED',
      fields: { option: 'nats.jetstream' },
    });
    expect((error as Error).message).toMatch(/^nats\.jetstream .* is true, .*JetStream disabled/);
    expect(node.lifecycle).toBe('failed');
  });

  it('with nats.jetstream false the node does without the stream, and says nothing of it', async () => {
    const { node, lines } = nodeOn(false);
    try {
      await node.start();
      expect(node.status().submitStream).toBe('off');
      expect(lines.filter((l) => /JetStream/.test(String(l.msg)))).toEqual([]);
    } finally {
      await node.shutdown(1000);
    }
  });
});
