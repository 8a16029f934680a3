import type pg from 'pg';

type Query = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<R[]>;

export interface Summary {
  readonly seconds: number;
  readonly submitted: number;
  readonly completed: number;
  readonly deadLettered: number;
  readonly retries: number;
  readonly perNode: { node: string; completed: number }[];
  readonly failover: {
    killed: string;
    term: number;
    newBearer: string | null;
    newTerm: number | null;
    grantMs: number | null;
    firstRunMs: number | null;
  };
  readonly terms: { term: number; holder: string; runs: number; runNodes: string[] }[];
  readonly scheduleTicks: number;
  readonly checks: { name: string; ok: boolean }[];
}

export async function collectSummary(
  q: Query,
  opts: {
    group: string;
    submitted: number;
    killed: { node: string; term: number; at: Date };
    seconds: number;
  },
): Promise<Summary> {
  const byStatus = await q<{ status: string; n: number }>(
    `select status::text, count(*)::int as n from $S.tasks where type <> 'demo.cleanup' group by 1`,
  );
  const n = (st: string) => byStatus.find((r) => r.status === st)?.n ?? 0;
  const perNode = await q<{ node: string; completed: number }>(
    `select lease_owner as node, count(*)::int as completed from $S.tasks
      where status = 'completed' and type <> 'demo.cleanup' group by 1 order by 1`,
  );
  const retries = (
    await q<{ n: number }>(
      `select count(*)::int as n from $S.task_history where to_status = 'retry'`,
    )
  )[0]!.n;
  const grants = await q<{ term: number; holder: string; granted_at: Date }>(
    `select term::int, task_id as holder, granted_at from $S.token_grants where group_id = $1 order by term`,
    [opts.group],
  );
  const runs = await q<{ term: number; node: string; runs: number; first: Date }>(
    `select term::int, node, count(*)::int as runs, min(started_at) as first from $S.service_runs
      where group_id = $1 group by term, node order by term, node`,
    [opts.group],
  );
  const next =
    grants.find((g) => g.term > opts.killed.term && g.granted_at >= opts.killed.at) ?? null;
  const firstRun = next ? runs.find((r) => r.term === next.term) : undefined;
  const terms = grants.map((g) => ({
    term: g.term,
    holder: g.holder,
    runs: runs.filter((r) => r.term === g.term).reduce((s, r) => s + r.runs, 0),
    runNodes: runs.filter((r) => r.term === g.term).map((r) => r.node),
  }));
  // The tasks its ticks became (unscheduling the job deleted its tick rows;
  // the tasks stay, one per due time: their idempotency key is unique).
  const ticks = (
    await q<{ n: number }>(
      `select count(*)::int as n from $S.tasks where idempotency_key like 'schedule:demo-cleanup:%'`,
    )
  )[0]!.n;
  const checks = [
    {
      name: 'every submitted task reached a terminal state',
      ok: n('completed') + n('dead_letter') === opts.submitted,
    },
    {
      name: 'one holder per term, terms strictly increasing',
      ok: grants.every((g, i) => g.term === i + 1),
    },
    {
      name: "coordinated runs only by their term's holder",
      ok: terms.every((t) => t.runNodes.every((node) => node === t.holder)),
    },
    {
      name: 'a standby took over from the killed bearer',
      ok: next !== null && next.holder !== opts.killed.node,
    },
  ];
  return {
    seconds: Math.round(opts.seconds * 10) / 10,
    submitted: opts.submitted,
    completed: n('completed'),
    deadLettered: n('dead_letter'),
    retries,
    perNode,
    failover: {
      killed: opts.killed.node,
      term: opts.killed.term,
      newBearer: next?.holder ?? null,
      newTerm: next?.term ?? null,
      grantMs: next ? next.granted_at.getTime() - opts.killed.at.getTime() : null,
      firstRunMs: firstRun ? firstRun.first.getTime() - opts.killed.at.getTime() : null,
    },
    terms,
    scheduleTicks: ticks,
    checks,
  };
}

export function printSummary(s: Summary, say: (line: string) => void): void {
  say('');
  say(`== summary (${s.seconds} s)`);
  say(
    `tasks: ${s.submitted} submitted, ${s.completed} completed, ${s.deadLettered} dead-lettered, ${s.retries} retries`,
  );
  say(`per node: ${s.perNode.map((p) => `${p.node} ${p.completed}`).join(', ')}`);
  const f = s.failover;
  say(
    `failover: ${f.killed} (term ${f.term}) killed -> ${f.newBearer ?? '?'} took term ${f.newTerm ?? '?'} after ${f.grantMs ?? '?'} ms; first coordinated run ${f.firstRunMs ?? '?'} ms after the kill`,
  );
  say('coordinated service demo.sweeper, runs per term:');
  for (const t of s.terms) say(`  term ${t.term}: ${t.holder}, ${t.runs} runs`);
  say(`recurring job demo-cleanup: ${s.scheduleTicks} ticks, each fired once in the whole cluster`);
  for (const c of s.checks) say(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}`);
}
