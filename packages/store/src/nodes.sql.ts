/** The SQL of node heartbeats: Ballerina's `health_check` table, on PostgreSQL's clock. */
export function nodeSql(s: string) {
  const hc = `${s}.health_check`;
  return {
    // Returns the row as it was before (none on the first beat): its writer's
    // \`instance\` and the age of its heartbeat, so a node can tell another
    // live process beating under its id.
    beat: `
      with prev as (
        select info->>'instance' as instance,
               (extract(epoch from (now() at time zone 'utc') - last_heartbeat) * 1000)::bigint as age_ms
          from ${hc} where task_id = $1 and group_id = $2
      ), up as (
        insert into ${hc} (task_id, group_id, last_heartbeat, info)
        values ($1, $2, now() at time zone 'utc', $3::jsonb)
        on conflict (task_id, group_id)
        do update set last_heartbeat = excluded.last_heartbeat, info = excluded.info
      )
      select instance, age_ms from prev`,
    member: `
      select info->>'instance' as instance, last_heartbeat,
             (extract(epoch from (now() at time zone 'utc') - last_heartbeat) * 1000)::bigint as age_ms
        from ${hc} where task_id = $1 and group_id = $2`,
    members: `
      select task_id, info, started_at,
             (extract(epoch from (now() at time zone 'utc') - last_heartbeat) * 1000)::bigint as age_ms
        from ${hc} where group_id = $1 order by task_id`,
    leave: `delete from ${hc} where task_id = $1 and group_id = $2`,
    prune: `
      delete from ${hc}
       where group_id = $1 and last_heartbeat < (now() at time zone 'utc') - $2 * interval '1 millisecond'`,
  };
}
