/**
 * The SQL of the schedule aggregate. Due times are compared with PostgreSQL's
 * clock (`now()`), or with an explicit instant the caller passes (simulated
 * time in tests). A tick is materialised at most once: `schedule_ticks` has
 * the primary key (schedule_id, due_at) and its task the idempotency key
 * `schedule:<id>:<due ISO>`.
 */

export const SCHEDULE_COLUMNS = `id, group_id, type, queue, payload, kind, spec, next_due_at,
  fired_count, skipped_count, paused, anchor_at, priority, max_attempts, retry, error_policy,
  waiting_policy, end_reason, ended_at, created_at, updated_at`;

export function scheduleSql(s: string) {
  const sc = `${s}.schedules`;
  const tk = `${s}.schedule_ticks`;
  const t = `${s}.tasks`;
  return {
    now: `select now() as now`,

    // $2: the group, or null for any (ids are unique across groups).
    get: `select ${SCHEDULE_COLUMNS} from ${sc} where id = $1 and ($2::text is null or group_id = $2)`,

    // $1 id ... $15 next_due_at; idempotent on id (a second create returns nothing).
    insert: `
      insert into ${sc} (id, group_id, type, queue, payload, kind, spec, anchor_at, priority,
                         max_attempts, retry, error_policy, waiting_policy, next_due_at, end_reason,
                         ended_at)
      values ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb, $8, $9, $10, $11::jsonb, $12, $13, $14,
              case when $14::timestamptz is null then 'completed' end,
              case when $14::timestamptz is null then now() end)
      on conflict (id) do nothing
      returning ${SCHEDULE_COLUMNS}`,

    // $1 group, $2 state filter ('active' | 'paused' | 'finished' | null), $3 limit
    list: `
      select ${SCHEDULE_COLUMNS} from ${sc}
       where group_id = $1
         and ($2::text is null
              or ($2 = 'active' and not paused and next_due_at is not null)
              or ($2 = 'paused' and paused and next_due_at is not null)
              or ($2 = 'finished' and next_due_at is null))
       order by id
       limit $3`,

    setPaused: `
      update ${sc} set paused = $2, updated_at = now()
       where id = $1 and ($3::text is null or group_id = $3)
      returning ${SCHEDULE_COLUMNS}`,

    setPausedAll: `
      update ${sc} set paused = $2, updated_at = now()
       where group_id = $1 and paused <> $2 and next_due_at is not null
      returning id`,

    // Its ticks go with it (deleteTicks, the next statement of the same
    // transaction): a schedule created later with the same id is another
    // schedule, which an old tick's task must not find (its error policy or
    // retry config) nor its due times block.
    delete: `delete from ${sc} where id = $1 and ($2::text is null or group_id = $2) returning id`,
    deleteTicks: `delete from ${tk} where schedule_id = $1`,

    until: `select coalesce($1::timestamptz, now()) as until`,

    // The firing step's selection: due, not paused, locked; other firers skip these rows.
    // $1 group, $2 the instant to fire up to, $3 limit
    due: `
      select ${SCHEDULE_COLUMNS}
        from ${sc}
       where group_id = $1 and not paused and next_due_at is not null
         and next_due_at <= $2
       order by next_due_at, id
       limit $3
       for update skip locked`,

    // Whether any schedule is due: one cheap read before the firing transaction
    // (the firer asks every scheduleTickMs; most of the time nothing is due).
    anyDue: `
      select now() as until, exists (
        select 1 from ${sc}
         where group_id = $1 and not paused and next_due_at is not null
           and next_due_at <= now()
      ) as due`,

    // Ticks first: a tick already materialised (by an earlier firer) is not inserted again.
    insertTicks: `
      insert into ${tk} (schedule_id, due_at)
      select i.schedule_id, i.due_at
        from unnest($1::text[], $2::timestamptz[]) as i(schedule_id, due_at)
      on conflict (schedule_id, due_at) do nothing
      returning schedule_id, due_at`,

    // Then one task per new tick (run_at = its due time), linked back to the tick.
    // $1 schedule ids, $2 due times, $3 idempotency keys
    enqueueTicks: `
      with i as (
        select * from unnest($1::text[], $2::timestamptz[], $3::text[]) as i(schedule_id, due_at, key)
      ), ins as (
        insert into ${t} (type, queue, payload, priority, run_at, max_attempts, idempotency_key)
        select sc.type, sc.queue, sc.payload, sc.priority, i.due_at, sc.max_attempts, i.key
          from i join ${sc} sc on sc.id = i.schedule_id
         order by i.due_at, i.schedule_id
        on conflict (idempotency_key) where idempotency_key is not null do nothing
        returning id, idempotency_key
      ), linked as (
        update ${tk} k set task_id = ins.id
          from ins join i on i.key = ins.idempotency_key
         where k.schedule_id = i.schedule_id and k.due_at = i.due_at
        returning k.schedule_id, k.due_at, k.task_id
      )
      select schedule_id, due_at, task_id from linked`,

    // $1 ids, $2 next due (null: finished), $3 fired, $4 skipped
    advance: `
      update ${sc} sc
         set next_due_at = u.next_due_at,
             fired_count = sc.fired_count + u.fired,
             skipped_count = sc.skipped_count + u.skipped,
             end_reason = case when u.next_due_at is null then 'completed' else sc.end_reason end,
             ended_at = case when u.next_due_at is null then now() else sc.ended_at end,
             updated_at = now()
        from unnest($1::text[], $2::timestamptz[], $3::int[], $4::int[])
             as u(id, next_due_at, fired, skipped)
       where sc.id = u.id`,

    // A tick's task ended in dead_letter: the error policy decides, in one statement.
    // Guarded: the task must be a tick of a schedule and be dead-lettered now.
    // The statement that dead-lettered the task applied the policy already
    // (see schedulePolicy in tasks.sql.ts); this applies it where it was not
    // (a dead letter written otherwise) and tells whether this task's
    // failure is what ended the schedule.
    onTickFailed: `
      with tick as (
        select k.schedule_id, k.due_at from ${tk} k join ${t} task on task.id = k.task_id
         where k.task_id = $1 and task.status = 'dead_letter'
      ), old as (
        select sc.id, sc.error_policy, sc.next_due_at, sc.terminated_by
          from ${sc} sc join tick on tick.schedule_id = sc.id
         for update of sc
      ), upd as (
        update ${sc} sc
           set next_due_at = null, end_reason = 'terminated', ended_at = now(), updated_at = now(),
               terminated_by = $1
          from old
         where sc.id = old.id and old.error_policy in ('TERMINATE', 'LOG_AND_TERMINATE')
           and sc.next_due_at is not null
        returning sc.id
      )
      select tick.schedule_id, tick.due_at, old.error_policy,
             upd.id is not null or coalesce(old.terminated_by = $1::bigint, false) as terminated
        from tick left join old on old.id = tick.schedule_id left join upd on upd.id = tick.schedule_id`,

    // The schedule (and tick) a task was materialised for.
    byTask: `
      select k.due_at as tick_due_at, ${SCHEDULE_COLUMNS.replaceAll(/(\w+)/g, 'sc.$1')}
        from ${tk} k join ${sc} sc on sc.id = k.schedule_id
       where k.task_id = $1`,

    nextWakeup: `
      select min(next_due_at) as due_at,
             extract(epoch from min(next_due_at) - now()) * 1000 as in_ms
        from ${sc}
       where group_id = $1 and not paused and next_due_at is not null`,

    ticks: `
      select schedule_id, due_at, task_id, fired_at from ${tk}
       where schedule_id = $1 order by due_at`,
  };
}
