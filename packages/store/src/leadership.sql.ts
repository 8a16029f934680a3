/** The first key of Baton's advisory locks ('bato'); the second is the group's. */
const FENCE_CLASS = 0x6261746f;

/**
 * The advisory lock that orders leader-only transactions against grants, as
 * literal SQL (a simple-query string may hold several statements, but no
 * parameters): a fenced transaction holds it shared, a grant exclusively.
 *
 * A row lock on the token row would do the same, but it would also block the
 * bearer's own lease renewals (an UPDATE of that row) for as long as its
 * fenced work runs; this lock leaves renewals alone. Its second key is a
 * 32-bit FNV-1a hash of the schema and group: two groups that collide only
 * wait for each other's grants, which never makes a write unsafe.
 */
export function fenceLock(quotedSchema: string, groupId: string) {
  let h = 0x811c9dc5;
  for (const ch of `${quotedSchema}\u0000${groupId}`) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193);
  }
  const key = `${FENCE_CLASS}, ${h | 0}`;
  return {
    /** For a grant: waits for every fenced transaction in flight. */
    exclusive: `select pg_advisory_xact_lock(${key})`,
    /** For a fenced transaction, before it reads the term. */
    shared: `select pg_advisory_xact_lock_shared(${key})`,
  };
}

/**
 * The SQL of the warm-backup token (seed 000's `token_holder`), with terms.
 * A grant is a compare-and-set on the term the candidate observed, and it is
 * logged in `token_grants` in the same statement.
 */
export function leadershipSql(s: string) {
  const th = `${s}.token_holder`;
  return {
    current: `
      select task_id, term, granted_at, lease_expires_at,
             greatest(0, extract(epoch from lease_expires_at - now()) * 1000)::bigint as remaining_ms
        from ${th} where group_id = $1`,

    // $1 group, $2 node, $3 observed term, $4 lease ms, $5 reason. Run after
    // waiting for the fence lock (see LeadershipStore.acquire): its times are
    // the statement's, not the transaction's, so a grant that waited for
    // fenced work neither starts with a lease already run down nor misses
    // one that ran out during the wait.
    acquire: `
      with ins as (
        insert into ${th} (group_id, task_id, term, granted_at, lease_expires_at)
        select $1, $2, 1, statement_timestamp(), statement_timestamp() + $4 * interval '1 millisecond' where $3::bigint = 0
        on conflict (group_id) do nothing
        returning term
      ), upd as (
        update ${th}
           set task_id = $2, term = term + 1, granted_at = statement_timestamp(),
               lease_expires_at = statement_timestamp() + $4 * interval '1 millisecond'
         where group_id = $1 and term = $3 and $3::bigint > 0
           and (task_id is null or lease_expires_at <= statement_timestamp())
        returning term
      ), got as (
        select term from ins union all select term from upd
      ), logged as (
        insert into ${s}.token_grants (group_id, term, task_id, reason)
        select $1, term, $2, $5 from got
      )
      select term from got`,

    // A renewal never shortens the lease: a slow renewal committing after a
    // newer one cannot pull the lease back.
    renew: `
      update ${th} set lease_expires_at = greatest(lease_expires_at, now() + $4 * interval '1 millisecond')
       where group_id = $1 and task_id = $2 and term = $3 and lease_expires_at > now()
      returning lease_expires_at`,

    release: `
      update ${th} set task_id = null, lease_expires_at = now()
       where group_id = $1 and task_id = $2 and term = $3
      returning term`,

    // Read under the fence lock (see fenceLock), so after any grant it waited for.
    fence: `select term from ${th} where group_id = $1`,

    grants: `
      select term, task_id, granted_at, reason from ${s}.token_grants
       where group_id = $1 order by term`,
  };
}
