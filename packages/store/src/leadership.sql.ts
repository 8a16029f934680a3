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

    // $1 group, $2 node, $3 observed term, $4 lease ms, $5 reason
    acquire: `
      with ins as (
        insert into ${th} (group_id, task_id, term, granted_at, lease_expires_at)
        select $1, $2, 1, now(), now() + $4 * interval '1 millisecond' where $3::bigint = 0
        on conflict (group_id) do nothing
        returning term
      ), upd as (
        update ${th}
           set task_id = $2, term = term + 1, granted_at = now(),
               lease_expires_at = now() + $4 * interval '1 millisecond'
         where group_id = $1 and term = $3 and $3::bigint > 0
           and (task_id is null or lease_expires_at <= now())
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

    // Taken inside a leader-only transaction: blocks a concurrent grant until commit.
    fence: `select term, task_id from ${th} where group_id = $1 for share`,

    grants: `
      select term, task_id, granted_at, reason from ${s}.token_grants
       where group_id = $1 order by term`,
  };
}
