import type { Pool, PoolClient } from 'pg';
import { fenceLock, leadershipSql } from './leadership.sql.js';
import type { StoreStats } from './tasks.js';

export interface TokenState {
  /** The bearer (Ballerina's `task_id`), or null when the token was released. */
  readonly holder: string | null;
  readonly term: number;
  readonly grantedAt: Date | null;
  readonly leaseExpiresAt: Date | null;
  /** Lease left, on PostgreSQL's clock (0 when expired). */
  readonly remainingMs: number;
}

export interface Grant {
  readonly term: number;
  readonly holder: string;
  readonly grantedAt: Date;
  readonly reason: string;
}

export type AcquireOutcome =
  | { readonly ok: true; readonly term: number }
  | { readonly ok: false; readonly current: TokenState | null };

export type FencedOutcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: 'stale_term'; readonly currentTerm: number };

/** How long a grant's transaction may sit idle holding the fence lock. */
const ACQUIRE_IDLE_TIMEOUT_MS = 2000;

/**
 * The warm-backup token of each group. Terms strictly increase on every
 * grant (including a re-grant to the same node); at most one holder per term.
 */
export class LeadershipStore {
  readonly #pool: Pool;
  readonly #schema: string;
  readonly #sql: ReturnType<typeof leadershipSql>;
  readonly #stats: StoreStats;

  constructor(pool: Pool, quotedSchema: string, stats: StoreStats) {
    this.#pool = pool;
    this.#schema = quotedSchema;
    this.#sql = leadershipSql(quotedSchema);
    this.#stats = stats;
  }

  async current(groupId: string): Promise<TokenState | null> {
    const { rows } = await this.#pool.query<{
      task_id: string | null;
      term: string;
      granted_at: Date | null;
      lease_expires_at: Date | null;
      remaining_ms: string | null;
    }>(this.#sql.current, [groupId]);
    const r = rows[0];
    if (!r) return null;
    return {
      holder: r.task_id,
      term: Number(r.term),
      grantedAt: r.granted_at,
      leaseExpiresAt: r.lease_expires_at,
      remainingMs: Number(r.remaining_ms ?? 0),
    };
  }

  /**
   * Takes the token if its term is still `observedTerm` and it is free (never
   * granted, released, or its lease expired on PostgreSQL's clock). Of any
   * number of concurrent candidates that observed the same term, one wins.
   * `onCompareAndSet` is called once, after the wait for the fence lock and
   * just before the compare-and-set is sent: the lease of a grant starts at
   * that statement's `statement_timestamp()`, so never before the call
   * (the election counts its local deadline from it).
   *
   * The wait for the fence lock (fenced work of the current term in flight)
   * lasts at most `lockTimeoutMs` (default: `leaseMs`, by when the election
   * has given this acquire up): then the acquire fails with PostgreSQL's
   * `lock_not_available` (55P03, retryable) and frees its connection, rather
   * than waiting behind a long fenced transaction, and holding back the
   * fenced transactions queued behind it, for as long as that one runs.
   */
  async acquire(opts: {
    groupId: string;
    nodeId: string;
    observedTerm: number;
    leaseMs: number;
    reason?: string;
    onCompareAndSet?: () => void;
    lockTimeoutMs?: number;
  }): Promise<AcquireOutcome> {
    // The grant waits for the fenced transactions in flight (of the term it
    // ends) to commit, and new ones wait for it: see `fenced`. At READ
    // COMMITTED the compare-and-set reads the token as it is after the wait.
    const lockTimeout = Math.max(1, Math.round(opts.lockTimeoutMs ?? opts.leaseMs));
    const rows = await this.#transaction(
      `set local lock_timeout = ${lockTimeout}; ${fenceLock(this.#schema, opts.groupId).exclusive}`,
      ACQUIRE_IDLE_TIMEOUT_MS,
      async (client) => {
        opts.onCompareAndSet?.();
        const { rows } = await client.query<{ term: string }>(this.#sql.acquire, [
          opts.groupId,
          opts.nodeId,
          opts.observedTerm,
          opts.leaseMs,
          opts.reason ?? 'election',
        ]);
        return { commit: true, value: rows };
      },
    );
    const row = rows[0];
    if (row) return { ok: true, term: Number(row.term) };
    return { ok: false, current: await this.current(opts.groupId) };
  }

  /** Extends the bearer's lease; false when the term is no longer its own or the lease ran out. */
  async renew(opts: {
    groupId: string;
    nodeId: string;
    term: number;
    leaseMs: number;
  }): Promise<boolean> {
    const { rows } = await this.#pool.query(this.#sql.renew, [
      opts.groupId,
      opts.nodeId,
      opts.term,
      opts.leaseMs,
    ]);
    return rows.length === 1;
  }

  /** Gives the token up at once (graceful shutdown), so a standby can take it without waiting. */
  async release(opts: { groupId: string; nodeId: string; term: number }): Promise<boolean> {
    const { rows } = await this.#pool.query(this.#sql.release, [
      opts.groupId,
      opts.nodeId,
      opts.term,
    ]);
    return rows.length === 1;
  }

  /** Counts a leader-only write refused by a term fence outside `fenced()`. */
  countStaleTerm(): void {
    this.#stats.staleTerms++;
  }

  /** The append-only log of every grant of the group's token. */
  async grants(groupId: string): Promise<Grant[]> {
    const { rows } = await this.#pool.query<{
      term: string;
      task_id: string;
      granted_at: Date;
      reason: string;
    }>(this.#sql.grants, [groupId]);
    return rows.map((r) => ({
      term: Number(r.term),
      holder: r.task_id,
      grantedAt: r.granted_at,
      reason: r.reason,
    }));
  }

  /**
   * Runs a leader-only write in a transaction fenced by `term`: a write of a
   * stale term is refused (and counted in `stats.staleTerms`), and a grant of
   * the next term cannot commit until this transaction has ended.
   *
   * The fence is an advisory lock of the group (see `fenceLock`), held shared
   * by the transaction (a grant takes it exclusively); the bearer's lease
   * renewals do not wait for it. The transaction runs at READ COMMITTED,
   * whatever the database's default: the term is read by a statement that
   * starts once the lock is held, so it sees any grant the lock waited for
   * (at REPEATABLE READ the snapshot would predate the wait). A session idle
   * inside the transaction for more than `idleTimeoutMs` (default 2000) is
   * ended by PostgreSQL, so a paused process cannot hold the lock against a
   * takeover.
   */
  async fenced<T>(
    fence: { groupId: string; term: number },
    work: (client: PoolClient) => Promise<T>,
    options: { idleTimeoutMs?: number } = {},
  ): Promise<FencedOutcome<T>> {
    const idle = Math.max(1, Math.round(options.idleTimeoutMs ?? 2000));
    return this.#transaction(
      fenceLock(this.#schema, fence.groupId).shared,
      idle,
      async (client): Promise<{ commit: boolean; value: FencedOutcome<T> }> => {
        const { rows } = await client.query<{ term: string }>(this.#sql.fence, [fence.groupId]);
        const currentTerm = rows[0] ? Number(rows[0].term) : 0;
        if (currentTerm !== fence.term) {
          this.#stats.staleTerms++;
          return { commit: false, value: { ok: false, reason: 'stale_term', currentTerm } };
        }
        return { commit: true, value: { ok: true, value: await work(client) } };
      },
    );
  }

  /**
   * Runs `work` in a READ COMMITTED transaction whose first round trip also
   * sets the idle timeout and runs `lock` (literal SQL that takes the fence
   * lock, shared or exclusive), then commits or rolls back as `work` says.
   * While the lock is held, a paused process is cut off by PostgreSQL after
   * `idleMs`; the client reports that as an error event, caught here
   * (pg-pool leaves a checked-out client without a listener, and an unheard
   * one would end the process), and the broken connection is not returned
   * to the pool.
   */
  async #transaction<T>(
    lock: string,
    idleMs: number,
    work: (client: PoolClient) => Promise<{ commit: boolean; value: T }>,
  ): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    const onError = (error: Error) => (broken = error);
    client.on('error', onError);
    try {
      await client.query(
        `begin isolation level read committed; ` +
          `set local idle_in_transaction_session_timeout = ${idleMs}; ${lock}`,
      );
      const { commit, value } = await work(client);
      await client.query(commit ? 'commit' : 'rollback');
      return value;
    } catch (error) {
      if (!broken) await client.query('rollback').catch(() => undefined);
      throw error;
    } finally {
      client.off('error', onError);
      client.release(broken ?? false);
    }
  }
}
