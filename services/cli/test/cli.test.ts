import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeNats, useTestDatabase } from '@baton/testkit';
import { createNode, type BatonNode } from '@baton/runtime';
import { afterAll, beforeAll, expect, it } from 'vitest';

const db = useTestDatabase();
const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));

interface Result {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** Runs `baton args...` as a user does, with the nodes' environment. */
function baton(env: Record<string, string | undefined>, ...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', main, ...args],
      { cwd: root, env: { PATH: process.env.PATH, ...env }, timeout: 30_000 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? ((error.code as number | undefined) ?? 1) : 0,
          out: stdout,
          err: stderr,
        }),
    );
  });
}

describeNats('the baton CLI', (natsUrl) => {
  const group = `cli${Math.random().toString(36).slice(2, 8)}`;
  let node: BatonNode;
  let env: Record<string, string>;

  beforeAll(async () => {
    node = createNode({
      groupId: group,
      nodeId: 'cli-1',
      database: { url: db.url, poolSize: 4 },
      nats: { servers: natsUrl },
      logLevel: 'silent',
      http: false,
    });
    node.handle('echo', (ctx) => ctx.payload as never);
    await node.start();
    env = { DATABASE_URL: db.url, NATS_URL: natsUrl, BATON_GROUP: group };
  });
  afterAll(async () => {
    await node?.shutdown(1000);
  });

  it('submits a task, reads it back, lists and counts it; a duplicate key is said', async () => {
    const first = await baton(env, 'submit', 'echo', '{"n":1}', '--key', 'cli-k1');
    expect(first).toMatchObject({ code: 0, err: '' });
    const id = first.out.trim();
    expect(id).toMatch(/^\d+$/);
    expect((await baton(env, 'submit', 'echo', '{"n":1}', '--key', 'cli-k1')).out.trim()).toBe(
      `${id} (duplicate)`,
    );
    await expect.poll(async () => (await node.client.get(id))?.status).toBe('completed');
    const got = JSON.parse((await baton(env, 'get', id, '--json')).out) as {
      task: { status: string; result: unknown };
      history: { to: string }[];
    };
    expect(got.task).toMatchObject({ status: 'completed', result: { n: 1 } });
    expect(got.history.map((h) => h.to)).toContain('pending');
    const listed = JSON.parse(
      (await baton(env, 'list', '--status', 'completed', '--type', 'echo', '--json')).out,
    ) as { tasks: { id: string }[] };
    expect(listed.tasks.map((t) => t.id)).toContain(id);
    const counts = JSON.parse((await baton(env, 'counts', '--json')).out) as Record<string, number>;
    expect(counts.completed).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it("shows the group's nodes from the status subject, and cancels a waiting task", async () => {
    const status = await baton(env, 'status');
    expect(status.code).toBe(0);
    expect(status.out).toMatch(/^NODE\s+LIFECYCLE\s+ROLE/);
    expect(status.out).toMatch(/cli-1\s+running\s+bearer/);
    const { id } = await node.client.enqueue({ type: 'nobody.handles.this' });
    expect((await baton(env, 'cancel', id)).out.trim()).toBe(`${id}: cancelled`);
    expect((await node.client.get(id))?.status).toBe('cancelled');
  }, 60_000);

  it('says what is wrong: exit 2 for a mistake in the command line or environment, 1 for a task not found', async () => {
    const unknown = await baton(env, 'frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown command frobnicate');
    expect(unknown.err).toContain('usage: baton');
    const badJson = await baton(env, 'submit', 'echo', '{n:1}');
    expect(badJson.code).toBe(2);
    expect(badJson.err).toMatch(/the payload is not JSON/);
    const badType = await baton(env, 'submit', 'no spaces allowed');
    expect(badType.code).toBe(2);
    expect(badType.err).toMatch(/type/);
    const badOption = await baton(env, 'list', '--limit', 'many');
    expect(badOption).toMatchObject({ code: 2 });
    expect(badOption.err).toContain('--limit must be an integer');
    const missing = await baton(env, 'get', '987654321');
    expect(missing).toMatchObject({ code: 1 });
    expect(missing.err).toContain('no task 987654321');
    const noDb = await baton({ BATON_GROUP: group }, 'counts');
    expect(noDb.code).toBe(2);
    expect(noDb.err).toContain('DATABASE_URL');
  }, 60_000);
});
