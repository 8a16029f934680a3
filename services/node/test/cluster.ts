import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { NodeProcess, type TestDatabase } from '@baton/testkit';

export const fixtureHandlers = fileURLToPath(new URL('./fixtures/handlers.ts', import.meta.url));

export interface ClusterOptions {
  readonly db: TestDatabase;
  readonly natsUrl?: string;
  readonly group: string;
  readonly env?: Record<string, string>;
}

/** Environment of one test node process. */
export function nodeEnv(opts: ClusterOptions, nodeId: string, extra: Record<string, string> = {}) {
  return {
    DATABASE_URL: opts.db.url,
    ...(opts.natsUrl ? { NATS_URL: opts.natsUrl } : {}),
    BATON_GROUP: opts.group,
    BATON_NODE_ID: nodeId,
    BATON_HANDLERS: fixtureHandlers,
    BATON_HTTP_PORT: '0',
    BATON_HTTP_HOST: '127.0.0.1',
    BATON_LOG_LEVEL: 'warn',
    BATON_DB_POOL_SIZE: '6',
    ...opts.env,
    ...extra,
  };
}

export async function startNodes(
  opts: ClusterOptions,
  ids: readonly string[],
): Promise<NodeProcess[]> {
  return Promise.all(ids.map((id) => NodeProcess.start(id, nodeEnv(opts, id))));
}

export async function createEffectsTable(db: TestDatabase): Promise<pg.Pool> {
  const pool = db.pool({ max: 4 });
  await pool.query(
    'create table if not exists test_effects (task_id bigint not null, attempt int not null, node text not null)',
  );
  await pool.query(
    'create table if not exists test_service_effects (term bigint not null, node text not null, run int not null, at timestamptz not null default now())',
  );
  return pool;
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  for (;;) {
    last = await probe();
    if (done(last)) return last;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
