/**
 * Child process of the floor yardstick (see floor.ts): the least a task
 * runner on PostgreSQL and NATS can do, with nothing of a product around it.
 *
 * - throughput: `loops` loops, each on its own connection: claim 50 with
 *   SKIP LOCKED (and mark them running) in one statement, complete them with
 *   one UPDATE;
 * - latency: a NATS subscription that inserts the task already running,
 *   reports the "handler start" after the commit, replies, and completes it
 *   2 ms later on a second connection (as a batching worker would).
 */
import pg from 'pg';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { handlerReporter, serveWorker, workerConfig, type WorkerMode } from './protocol.js';

export interface FloorWorkerConfig {
  url: string;
  nats: string;
  subject: string;
  mode: WorkerMode;
  nodeId: string;
  /** Claim-complete loops per process, each on its own connection (throughput). */
  loops: number;
}

const FLOOR_CLAIM = `
  with next as (
    select id from floor_jobs where status = 'pending' order by id limit 50 for update skip locked
  )
  update floor_jobs j set status = 'running', attempt = j.attempt + 1, locked_by = $1,
         locked_at = now()
    from next where j.id = next.id
  returning j.id, j.payload`;

const config = workerConfig<FloorWorkerConfig>();
const report = handlerReporter(config.mode);

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: config.url });
  c.on('error', () => {});
  await c.connect();
  return c;
}

function throughputLoops(): () => Promise<void> {
  let stopped = false;
  const loop = async () => {
    const c = await client();
    try {
      while (!stopped) {
        const { rows } = await c.query<{ id: string }>({
          name: 'claim',
          text: FLOOR_CLAIM,
          values: [config.nodeId],
        });
        if (rows.length === 0) {
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        for (const row of rows) report(row.id);
        await c.query({
          name: 'complete',
          text: `update floor_jobs set status = 'completed' where id = any($1::bigint[])`,
          values: [rows.map((r) => r.id)],
        });
      }
    } finally {
      await c.end();
    }
  };
  const done = Promise.all(Array.from({ length: config.loops }, loop));
  return async () => {
    stopped = true;
    await done;
  };
}

async function latencyResponder(): Promise<() => Promise<void>> {
  const [writer, completer] = await Promise.all([client(), client()]);
  const nc: NatsConnection = await connect({ servers: config.nats });
  const encoder = new TextEncoder();
  nc.subscribe(config.subject, {
    callback: (_error, msg) => {
      void (async () => {
        const { rows } = await writer.query<{ id: string }>({
          name: 'insert',
          text: `insert into floor_jobs (payload, status, attempt) values ($1, 'running', 1) returning id`,
          values: [msg.string()],
        });
        const id = rows[0]!.id;
        report(id);
        msg.respond(encoder.encode(JSON.stringify({ id })));
        setTimeout(() => {
          void completer.query({
            name: 'complete',
            text: `update floor_jobs set status = 'completed' where id = $1`,
            values: [id],
          });
        }, 2);
      })();
    },
  });
  return async () => {
    await nc.close();
    await Promise.all([writer.end(), completer.end()]);
  };
}

serveWorker({
  start: async () => (config.mode === 'throughput' ? throughputLoops() : latencyResponder()),
});
