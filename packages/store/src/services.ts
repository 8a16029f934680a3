import type { Pool } from 'pg';
import type { LeadershipStore } from './leadership.js';

/** One run of a coordinated service. */
export interface ServiceRun {
  readonly id: string;
  readonly service: string;
  readonly term: number;
  readonly node: string;
  readonly startedAt: Date;
}

export type RecordRunOutcome =
  /** `run`: the run's id in the group's run log (unique, increasing). */
  | { readonly ok: true; readonly run: number; readonly startedAt: Date }
  | { readonly ok: false; readonly reason: 'stale_term' | 'max_count' };

/** The runs of coordinated services (`service_runs`), written only by the bearer of the current term. */
export class ServiceRunStore {
  readonly #pool: Pool;
  readonly #s: string;
  readonly #leadership: LeadershipStore;

  constructor(pool: Pool, quotedSchema: string, leadership: LeadershipStore) {
    this.#pool = pool;
    this.#s = quotedSchema;
    this.#leadership = leadership;
  }

  /**
   * Records the start of a run, in a transaction fenced by `term`: refused
   * (and counted) when the term is no longer current, or when the service has
   * already run `maxCount` times in the whole group.
   */
  async record(
    opts: {
      groupId: string;
      service: string;
      term: number;
      node: string;
      maxCount?: number;
    },
    /** The connection: the caller's transaction (one it may roll back), or the pool. */
    db: Pick<Pool, 'query'> = this.#pool,
  ): Promise<RecordRunOutcome> {
    const limited = opts.maxCount !== undefined && opts.maxCount >= 0;
    // One statement: the share lock on the token row holds the term for the
    // inserts (a grant of the next term waits for it). The service's count
    // (service_run_counts) is what maxCount limits, so pruning the log
    // changes nothing; its row lock orders concurrent records.
    const { rows } = await db.query<{
      fenced: boolean;
      started_at: Date | null;
      id: string | null;
    }>({
      name: `baton.${this.#s}.serviceRuns.record`,
      text: `
        with fence as (
          select term from ${this.#s}.token_holder where group_id = $1 and term = $3 for share
        ), counted as (
          insert into ${this.#s}.service_run_counts as c (group_id, service, runs)
          select $1, $2, 1 from fence where $5::int <> 0
          on conflict (group_id, service) do update set runs = c.runs + 1
           where $5::int < 0 or c.runs < $5::int
          returning runs
        ), ins as (
          insert into ${this.#s}.service_runs (group_id, service, term, node)
          select $1, $2, $3, $4 from counted
          returning id, started_at
        )
        select exists (select 1 from fence) as fenced, (select started_at from ins) as started_at,
               (select id::text from ins) as id`,
      values: [opts.groupId, opts.service, opts.term, opts.node, limited ? opts.maxCount! : -1],
    });
    const row = rows[0]!;
    if (!row.fenced) {
      this.#leadership.countStaleTerm();
      return { ok: false, reason: 'stale_term' };
    }
    if (row.started_at === null) return { ok: false, reason: 'max_count' };
    return { ok: true, run: Number(row.id), startedAt: row.started_at };
  }

  /**
   * Retention: deletes the group's runs logged more than `olderThanMs` ago,
   * at most `limit`, in a leader-only transaction fenced by `fence`'s term
   * (the bearer's lease renewals do not wait for it). What maxCount counts is
   * kept apart (`service_run_counts`) and does not change.
   */
  async prune(opts: {
    olderThanMs: number;
    fence: { groupId: string; term: number };
    limit?: number;
  }): Promise<{ ok: true; deleted: number } | { ok: false; reason: 'stale_term' }> {
    const outcome = await this.#leadership.fenced(opts.fence, (client) =>
      client.query<{ n: number }>(
        `with del as (
           delete from ${this.#s}.service_runs
            where id in (select id from ${this.#s}.service_runs
                          where group_id = $1 and started_at < now() - $2 * interval '1 millisecond'
                          order by started_at limit $3)
           returning id
         )
         select count(*)::int as n from del`,
        [opts.fence.groupId, opts.olderThanMs, opts.limit ?? 1000],
      ),
    );
    if (!outcome.ok) return { ok: false, reason: 'stale_term' };
    return { ok: true, deleted: outcome.value.rows[0]!.n };
  }

  /** The runs of a group (one service, or all), oldest first. */
  async list(groupId: string, service?: string): Promise<ServiceRun[]> {
    const { rows } = await this.#pool.query<{
      id: string;
      service: string;
      term: string;
      node: string;
      started_at: Date;
    }>(
      // Ordered by the column, not by the text it is returned as ("10" < "9").
      `select r.id::text, r.service, r.term, r.node, r.started_at from ${this.#s}.service_runs r
        where r.group_id = $1 and ($2::text is null or r.service = $2) order by r.id`,
      [groupId, service ?? null],
    );
    return rows.map((r) => ({
      id: r.id,
      service: r.service,
      term: Number(r.term),
      node: r.node,
      startedAt: r.started_at,
    }));
  }
}
