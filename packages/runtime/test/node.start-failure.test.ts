import { createServer, type Server } from 'node:net';
import { useTestDatabase } from '@baton/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { testNode } from './nodes.js';

const db = useTestDatabase();
let taken: Server;
let port: number;

beforeAll(async () => {
  taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  port = (taken.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((resolve) => taken.close(() => resolve())));

it('a start that fails after the actors started stops them (the token given back, the node gone), then fails', async () => {
  const group = `f${Math.random().toString(36).slice(2, 8)}`;
  const node = testNode(db.url, {
    groupId: group,
    nodeId: 'f1',
    http: { host: '127.0.0.1', port }, // taken: the HTTP server, started last, fails
    shutdownGraceMs: 1000,
  });
  await expect(node.start()).rejects.toThrow(/EADDRINUSE/);
  // Its actors are stopped, not left running against closed pools.
  expect(node.status().actors.supervisor.status).not.toBe('active');
  expect(node.lifecycle).toBe('failed');
  // The token is not held by it (it may have become the bearer on its way up).
  const pool = db.pool({ max: 1 });
  const token = await pool.query<{ task_id: string | null }>(
    'select task_id from baton.token_holder where group_id = $1',
    [group],
  );
  expect(token.rows.filter((r) => r.task_id === 'f1')).toEqual([]);
  // And nothing of it runs on: no heartbeat row is written again.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const beats = await pool.query('select 1 from baton.health_check where group_id = $1', [group]);
  expect(beats.rowCount).toBe(0);
});

it('a shutdown while the node is starting stops it there: the start unwinds, the exit is stopped', async () => {
  const group = `s${Math.random().toString(36).slice(2, 8)}`;
  // Hold the migration lock: the start waits in its first step.
  const blocker = await db.pool({ max: 1 }).connect();
  await blocker.query('begin');
  await blocker.query('select pg_advisory_xact_lock(hashtext($1))', ['baton.migrate:baton']);
  const node = testNode(db.url, { groupId: group, nodeId: 's1' });
  const started = node.start();
  started.catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(node.lifecycle).toBe('starting');
  const exit = node.shutdown(100);
  await new Promise((resolve) => setTimeout(resolve, 300));
  await blocker.query('commit'); // the start's next step sees the shutdown
  blocker.release();
  await expect(started).rejects.toThrow(/shut down while it was starting/);
  expect(await exit).toEqual({ status: 'stopped', reason: null });
  expect(node.lifecycle).toBe('stopped');
  // It never went on to run: no heartbeat, no token.
  const pool = db.pool({ max: 1 });
  const beats = await pool.query('select 1 from baton.health_check where group_id = $1', [group]);
  expect(beats.rowCount).toBe(0);
  const token = await pool.query('select 1 from baton.token_holder where group_id = $1', [group]);
  expect(token.rowCount).toBe(0);
});
