import { createServer } from 'node:net';
import { NodeProcess, useTestDatabase } from '@baton/testkit';
import { afterAll, expect, it } from 'vitest';
import { nodeEnv } from './cluster.js';

const db = useTestDatabase();
afterAll(() => NodeProcess.killAll());

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

it('SIGTERM while the node waits at start for a NATS server that is down: it exits 0 within the grace', async () => {
  const natsUrl = `nats://127.0.0.1:${await closedPort()}`;
  const group = `sig${Math.random().toString(36).slice(2, 8)}`;
  const node = NodeProcess.spawn(
    'sig1',
    nodeEnv({ db, natsUrl, group, env: { BATON_SHUTDOWN_GRACE_MS: '1000' } }, 'sig1'),
  );
  // Started (its pool is connected: the signal handlers are in place), still
  // waiting for NATS; however long loading the modules took on a busy machine.
  const pool = db.pool({ max: 1 });
  await expect
    .poll(
      async () =>
        (
          await pool.query<{ n: number }>(
            `select count(*)::int as n from pg_stat_activity where application_name = 'baton:sig1'`,
          )
        ).rows[0]!.n,
      { timeout: 20_000, interval: 100 },
    )
    .toBeGreaterThan(0);
  // It says what it waits for.
  await expect
    .poll(() => node.output.some((l) => l.includes('waiting for the NATS server to answer')), {
      timeout: 10_000,
    })
    .toBe(true);
  expect(node.running).toBe(true);
  const t0 = Date.now();
  node.signal('SIGTERM');
  const exit = await node.exited;
  expect(exit).toEqual({ code: 0, signal: null });
  // The grace (1 s), then the entrypoint's exit; before, it never exited on its own.
  expect(Date.now() - t0).toBeLessThan(10_000);
}, 30_000);

it('a bad configuration value exits 2 with one line naming it, like a bad environment variable', async () => {
  for (const [env, named] of [
    [{ BATON_CONCURRENCY: '0' }, 'BATON_CONCURRENCY: worker.concurrency'],
    [{ BATON_LOG_LEVEL: 'loud' }, 'BATON_LOG_LEVEL: logLevel'],
    // Refused by the start itself, after the database was reached.
    [
      { NATS_URL: 'nats://127.0.0.1:4222', BATON_NATS_TLS_CA_FILE: 'no/such/ca.pem' },
      'BATON_NATS_TLS_CA_FILE: nats.tls.caFile',
    ],
    // A handler module's entry that is not a handler: the module and the type.
    [
      { BATON_HANDLERS: 'services/node/test/fixtures/bad-entry.mjs' },
      'BATON_HANDLERS: services/node/test/fixtures/bad-entry.mjs: handler "email.send"',
    ],
  ] as const) {
    const node = NodeProcess.spawn('bad', nodeEnv({ db, group: 'bad', env }, 'bad'));
    expect(await node.exited).toEqual({ code: 2, signal: null });
    const lines = node.output.filter((l) => l.startsWith('baton-node:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(named);
    expect(node.output.some((l) => /^\s+at /.test(l))).toBe(false); // no stack trace
  }
}, 60_000);

it("a handler module that throws as it loads exits 2, naming it, with its own code's stack", async () => {
  const node = NodeProcess.spawn(
    'imp',
    nodeEnv(
      {
        db,
        group: 'imp',
        env: { BATON_HANDLERS: './services/node/test/fixtures/throws-on-import.mjs' },
      },
      'imp',
    ),
  );
  expect(await node.exited).toEqual({ code: 2, signal: null });
  const text = node.output.join('\n');
  expect(text).toContain(
    'BATON_HANDLERS: cannot load ./services/node/test/fixtures/throws-on-import.mjs: MAILER_URL is not set',
  );
  expect(text).toMatch(/at connectToMailer .*throws-on-import\.mjs/);
}, 30_000);

it('a database that cannot be reached at start exits 1 with one line naming DATABASE_URL', async () => {
  const url = `postgres://postgres@127.0.0.1:${await closedPort()}/baton`;
  const node = NodeProcess.spawn(
    'nodb',
    nodeEnv({ db, group: 'nodb', env: { DATABASE_URL: url } }, 'nodb'),
  );
  expect(await node.exited).toEqual({ code: 1, signal: null });
  const lines = node.output.filter((l) => l.startsWith('baton-node:'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/the node failed to start: PostgreSQL \(DATABASE_URL\): .*ECONNREFUSED/);
  expect(node.output.some((l) => /^\s+at /.test(l))).toBe(false);
}, 30_000);
