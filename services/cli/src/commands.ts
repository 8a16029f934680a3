/**
 * The CLI's commands over the typed client: each returns the text to print
 * (or JSON with --json). Parsing and the process are main.ts's.
 */
import type { ConnectedClient, NodeStatus } from '@baton/runtime';

/** A mistake in the command line: exit 2 with the usage. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const USAGE = `usage: baton <command> [options]

  status [--node <id>]              the group's nodes: lifecycle, role, worker, members
  counts                            tasks by status
  list [--status s] [--type t] [--queue q] [--limit n]
                                    tasks, newest first
  get <id>                          one task and its history
  cancel <id>                       cancel a task (its worker aborts it if it runs)
  submit <type> [payload-json] [--key k] [--queue q] [--priority n]
         [--max-attempts n] [--run-at iso-time] [--delay-ms n]
                                    store a task; prints its id

options: --json (machine-readable output), --help
environment: DATABASE_URL (required), NATS_URL, BATON_GROUP, BATON_DB_SCHEMA
  (the nodes' own values: the same database, bus and group)`;

export interface Parsed {
  readonly command: string;
  readonly args: readonly string[];
  readonly options: Readonly<Record<string, string | boolean | undefined>>;
}

const int = (name: string, raw: string | boolean | undefined): number | undefined => {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== 'string' || !Number.isInteger(n)) {
    throw new UsageError(`--${name} must be an integer, got ${String(raw)}`);
  }
  return n;
};

const str = (raw: string | boolean | undefined): string | undefined =>
  typeof raw === 'string' ? raw : undefined;

function one(args: readonly string[], what: string): string {
  if (args.length !== 1) throw new UsageError(`expected one ${what}, got ${args.length}`);
  return args[0]!;
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const stateOf = (value: unknown): string =>
  typeof value === 'string'
    ? value
    : Object.entries(value as Record<string, unknown>)
        .map(([k, v]) => `${k}.${stateOf(v)}`)
        .join(',');

function statusTable(nodes: readonly NodeStatus[]): string {
  if (nodes.length === 0) return 'no node answered';
  const ctx = <T>(s: NodeStatus, actor: keyof NodeStatus['actors']) =>
    (s.actors[actor]?.context ?? {}) as T;
  return table([
    ['NODE', 'LIFECYCLE', 'ROLE', 'TERM', 'WORKER', 'RUNNING', 'MEMBERS', 'BUS', 'UPTIME'],
    ...nodes.map((s) => {
      const sup = ctx<{ role?: string; term?: number | null }>(s, 'supervisor');
      const w = ctx<{ inFlight?: number; concurrency?: number }>(s, 'worker');
      const wd = ctx<{ alive?: number }>(s, 'watchdog');
      return [
        s.nodeId,
        s.lifecycle,
        sup.role ?? '-',
        String(sup.term ?? '-'),
        s.actors.worker ? stateOf(s.actors.worker.state) : '-',
        `${w.inFlight ?? 0}/${w.concurrency ?? 0}`,
        String(wd.alive ?? '-'),
        `${s.bus.kind}${s.bus.connected ? '' : ' (down)'}`,
        `${s.uptimeS}s`,
      ];
    }),
  ]);
}

/** Runs one command; resolves with the text to print. */
export async function run(client: ConnectedClient, p: Parsed): Promise<string> {
  const json = p.options.json === true;
  const out = (value: unknown, text: () => string) =>
    json ? JSON.stringify(value, null, 2) : text();
  switch (p.command) {
    case 'status': {
      const node = str(p.options.node);
      const nodes = await client.status(node === undefined ? {} : { nodeId: node });
      return out(nodes, () => statusTable(nodes));
    }
    case 'counts': {
      const counts = await client.counts();
      return out(counts, () => table(Object.entries(counts).map(([s, n]) => [s, String(n)])));
    }
    case 'list': {
      const status = str(p.options.status);
      const type = str(p.options.type);
      const queue = str(p.options.queue);
      const limit = int('limit', p.options.limit);
      const page = await client.list({
        ...(status ? { status: status.split(',') as never } : {}),
        ...(type ? { type } : {}),
        ...(queue ? { queue } : {}),
        ...(limit !== undefined ? { limit } : {}),
      });
      return out(page, () =>
        page.tasks.length === 0
          ? 'no task'
          : table([
              ['ID', 'TYPE', 'QUEUE', 'STATUS', 'ATTEMPT', 'CREATED'],
              ...page.tasks.map((t) => [
                t.id,
                t.type,
                t.queue,
                t.status,
                `${t.attempt}/${t.maxAttempts}`,
                t.createdAt.toISOString(),
              ]),
            ]),
      );
    }
    case 'get': {
      const id = one(p.args, 'task id');
      const task = await client.get(id);
      if (!task) throw new Error(`no task ${id}`);
      const history = await client.history(id);
      return out({ task, history }, () =>
        [
          JSON.stringify(task, null, 2),
          '',
          table([
            ['AT', 'FROM', 'TO', 'ATTEMPT', 'NODE'],
            ...history.map((h) => [
              h.at.toISOString(),
              h.from ?? '-',
              h.to,
              String(h.attempt),
              h.node ?? '-',
            ]),
          ]),
        ].join('\n'),
      );
    }
    case 'cancel': {
      const id = one(p.args, 'task id');
      const outcome = await client.cancel(id);
      return out(outcome, () =>
        outcome.ok ? `${id}: ${outcome.status}` : `${id}: not cancelled, already ${outcome.status}`,
      );
    }
    case 'submit': {
      if (p.args.length < 1 || p.args.length > 2) {
        throw new UsageError('submit takes a type and an optional JSON payload');
      }
      let payload: unknown;
      if (p.args[1] !== undefined) {
        try {
          payload = JSON.parse(p.args[1]);
        } catch (error) {
          throw new UsageError(`the payload is not JSON: ${(error as Error).message}`);
        }
      }
      const key = str(p.options.key);
      const queue = str(p.options.queue);
      const runAt = str(p.options['run-at']);
      const priority = int('priority', p.options.priority);
      const maxAttempts = int('max-attempts', p.options['max-attempts']);
      const delayMs = int('delay-ms', p.options['delay-ms']);
      if (runAt !== undefined && Number.isNaN(Date.parse(runAt))) {
        throw new UsageError(`--run-at must be an ISO time, got ${runAt}`);
      }
      const result = await client.enqueue({
        type: p.args[0]!,
        ...(payload !== undefined ? { payload } : {}),
        ...(key ? { idempotencyKey: key } : {}),
        ...(queue ? { queue } : {}),
        ...(runAt ? { runAt: new Date(runAt) } : {}),
        ...(priority !== undefined ? { priority } : {}),
        ...(maxAttempts !== undefined ? { maxAttempts } : {}),
        ...(delayMs !== undefined ? { delayMs } : {}),
      });
      return out(result, () => `${result.id}${result.duplicate ? ' (duplicate)' : ''}`);
    }
    default:
      throw new UsageError(`unknown command ${p.command}`);
  }
}
