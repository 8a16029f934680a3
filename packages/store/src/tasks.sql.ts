/**
 * The SQL of the task aggregate. Every transition is one guarded statement
 * (`WHERE status = <expected> AND attempt = <n>`) that records itself in the
 * same statement: happy-path times as columns of the task row, everything
 * else (retries, rescues, releases, cancellations, dead letters, redrives,
 * re-claims) as `task_history` rows.
 */

const TASK_COLUMNS = `id, type, queue, payload, status, priority, run_at, attempt, max_attempts,
  idempotency_key, lease_owner, lease_expires_at, cancel_requested, last_error, result,
  created_at, claimed_at, started_at, finished_at`;

// Highest priority first, then earliest due, then oldest. Only rows in the
// partial claim index are visited; SKIP LOCKED lets claimers pass each other.
// With $6 (start) the claim also starts the runs: pending -> claimed -> running
// in one statement, for a worker that starts every task it claims at once.
function claimSql(t: string, h: string, s: string, returning: string, select: string): string {
  return `
      with next as (
        select id, status from ${t}
         where status in ('pending', 'retry') and queue = $1 and run_at <= now()
           and ($2::text[] is null or type = any($2::text[]))
         order by priority desc, run_at, id
         limit $3
         for update skip locked
      ), claimed as (
        update ${t} t
           set status = case when $6::boolean then 'running'::${s}.task_status
                             else 'claimed'::${s}.task_status end,
               attempt = t.attempt + 1, lease_owner = $4,
               lease_expires_at = now() + $5 * interval '1 millisecond', claimed_at = now(),
               started_at = case when $6::boolean then now() end
         where t.id = any(array(select id from next))
        returning ${returning}
      ), reclaims as (
        -- From where it was: retry, or pending after a release or a redrive.
        insert into ${h} (task_id, from_status, to_status, node, attempt)
        select c.id, n.status, 'claimed'::${s}.task_status, c.lease_owner, c.attempt
          from claimed c join next n on n.id = c.id where c.attempt > 1
        union all
        select id, 'claimed'::${s}.task_status, 'running'::${s}.task_status, lease_owner, attempt
          from claimed
         where attempt > 1 and $6::boolean
      )
      ${select}`;
}

/**
 * The result of a batch write whose changed rows are in `upd`: one row, with
 * `n` rows changed and, only when `n` is short of the batch's ids (`ids`, an
 * array parameter), the changed ones' ids (null when none changed). A batch
 * written whole sends back no id at all: 500 rows less for the node to parse.
 */
function batchWritten(ids: string): string {
  return `select count(*)::int as n,
         case when count(*) < cardinality(${ids}::bigint[]) then array_agg(id)::text[] end as ids
    from upd`;
}

/**
 * A CTE (after `upd`, which returns `id` and `status`) that applies the error
 * policy of the schedules whose tick tasks `upd` dead-lettered, in the same
 * statement: TERMINATE and LOG_AND_TERMINATE end the schedule, recording the
 * task that did. Logging the outcome is left to the caller (`onTickFailed`).
 */
function schedulePolicy(s: string): string {
  return `policy as (
        update ${s}.schedules sc
           set next_due_at = null, end_reason = 'terminated', ended_at = now(),
               updated_at = now(), terminated_by = k.task_id
          from ${s}.schedule_ticks k
         where k.task_id is not null
           and k.task_id in (select id from upd where status = 'dead_letter')
           and sc.id = k.schedule_id
           and sc.error_policy in ('TERMINATE', 'LOG_AND_TERMINATE')
           and sc.next_due_at is not null
        returning sc.id
      )`;
}

export function taskSql(s: string) {
  const t = `${s}.tasks`;
  const h = `${s}.task_history`;
  return {
    columns: TASK_COLUMNS,

    enqueue: `
      insert into ${t} (type, queue, payload, priority, run_at, max_attempts, idempotency_key)
      select i.type, i.queue, i.payload, i.priority,
             coalesce(i.run_at, now() + i.delay_ms * interval '1 millisecond'),
             i.max_attempts, i.idempotency_key
        from unnest($1::text[], $2::text[], $3::jsonb[], $4::int[], $5::timestamptz[],
                    $6::int[], $7::int[], $8::text[])
             with ordinality as i(type, queue, payload, priority, run_at, delay_ms,
                                  max_attempts, idempotency_key, ord)
       order by i.ord
      on conflict (idempotency_key) where idempotency_key is not null do nothing
      returning id, idempotency_key`,

    // Enqueue, starting the rows marked in $9 on the submitting node ($10, lease
    // $11 ms) when nothing it could claim instead waits in its queue ($12: a due
    // task of one of its types, $13): those are stored
    // running, attempt 1, as a claim-and-start would leave them. The others,
    // and all of them when the queue has a backlog, are stored pending.
    // The backlog CTE is materialized: inlined, it became one InitPlan per use.
    enqueueStart: `
      with backlog as materialized (
        select exists (
          select 1 from ${t}
           where status in ('pending', 'retry') and queue = $12 and run_at <= now()
             and type = any($13::text[])
        ) as waiting
      )
      insert into ${t} (type, queue, payload, priority, run_at, max_attempts, idempotency_key,
                        status, attempt, lease_owner, lease_expires_at, claimed_at, started_at)
      select i.type, i.queue, i.payload, i.priority,
             coalesce(i.run_at, now() + i.delay_ms * interval '1 millisecond'),
             i.max_attempts, i.idempotency_key,
             case when go then 'running'::${s}.task_status else 'pending'::${s}.task_status end,
             case when go then 1 else 0 end,
             case when go then $10 end,
             case when go then now() + $11 * interval '1 millisecond' end,
             case when go then now() end,
             case when go then now() end
        from unnest($1::text[], $2::text[], $3::jsonb[], $4::int[], $5::timestamptz[],
                    $6::int[], $7::int[], $8::text[], $9::boolean[])
             with ordinality as i(type, queue, payload, priority, run_at, delay_ms,
                                  max_attempts, idempotency_key, start, ord)
        cross join backlog b
        cross join lateral (
          select i.start and not b.waiting and i.queue = $12
                 and i.run_at is null and coalesce(i.delay_ms, 0) <= 0 as go
        ) d
       order by i.ord
      on conflict (idempotency_key) where idempotency_key is not null do nothing
      returning id, idempotency_key, status::text as status, type, queue, payload, attempt,
                max_attempts`,

    byIdempotencyKeys: `select id, idempotency_key from ${t} where idempotency_key = any($1::text[])`,

    // Highest priority first, then earliest due, then oldest. Only rows in the
    // partial claim index are visited; SKIP LOCKED lets claimers pass each other.
    // With $6 (start) the claim also starts the runs: pending -> claimed -> running
    // in one statement, for a worker that starts every task it claims at once.
    claim: claimSql(
      t,
      h,
      s,
      't.*',
      `select ${TASK_COLUMNS} from claimed order by priority desc, run_at, id`,
    ),

    // The worker's claim: always starts the runs, and returns only what a run
    // needs (no timestamps to parse, no order: the batch starts at once).
    claimRuns: claimSql(
      t,
      h,
      s,
      't.id, t.type, t.queue, t.payload, t.attempt, t.max_attempts, t.idempotency_key, t.lease_owner',
      `select id, type, queue, payload, attempt, max_attempts, idempotency_key from claimed`,
    ),

    // The batch transitions below find their rows by primary key, one probe
    // per id. Their status test compares text on purpose: written as
    // `t.status = 'running'` it lets the planner scan every claimed or running
    // row instead (through tasks_lease_idx), a plan it picks whenever the
    // statistics say few rows run, and whose cost grows with all the runs in
    // the group, not with the batch (a nested loop over it was 84 ms for 500).
    markRunning: `
      with upd as (
        update ${t} t set status = 'running', started_at = now()
          from unnest($1::bigint[], $2::int[]) as r(id, attempt)
         where t.id = r.id and t.attempt = r.attempt and t.status::text = 'claimed'
        returning t.id, t.attempt, t.lease_owner
      ), hist as (
        insert into ${h} (task_id, from_status, to_status, node, attempt)
        select id, 'claimed', 'running', lease_owner, attempt from upd where attempt > 1
      )
      select id from upd`,

    extendLease: `
      update ${t} set lease_expires_at = now() + $3 * interval '1 millisecond'
       where id = $1 and attempt = $2 and status in ('claimed', 'running')
      returning cancel_requested, lease_expires_at`,

    // One row back, not one per task: how many runs were completed and, only
    // when that falls short of the batch (a stale attempt), which ones.
    complete: `
      with upd as (
        update ${t} t
           set status = 'completed', finished_at = now(), result = r.result,
               lease_expires_at = null
          from unnest($1::bigint[], $2::int[], $3::jsonb[]) as r(id, attempt, result)
         where t.id = r.id and t.attempt = r.attempt and t.status::text = 'running'
        returning t.id
      )
      ${batchWritten('$1')}`,

    // The same for a batch whose results are all null (most tasks return nothing).
    completeNoResults: `
      with upd as (
        update ${t} t
           set status = 'completed', finished_at = now(), result = null, lease_expires_at = null
          from unnest($1::bigint[], $2::int[]) as r(id, attempt)
         where t.id = r.id and t.attempt = r.attempt and t.status::text = 'running'
        returning t.id
      )
      ${batchWritten('$1')}`,

    // $3 retryable, $4 retry delay in ms, $5 error json. A failure of a task
    // whose cancellation was requested ends it cancelled: it is not retried.
    fail: `
      with old as (
        -- final: no retry (cancellation requested, not retryable, or attempts spent).
        select id, status,
               cancel_requested or not $3::boolean or attempt >= max_attempts as final
          from ${t}
         where id = $1 and attempt = $2 and status in ('claimed', 'running')
         for update
      ), upd as (
        update ${t} t
           set status = case when t.cancel_requested then 'cancelled'::${s}.task_status
                             when old.final then 'dead_letter'::${s}.task_status
                             else 'retry'::${s}.task_status end,
               run_at = case when old.final then t.run_at
                             else now() + $4 * interval '1 millisecond' end,
               finished_at = case when old.final then now() else null end,
               last_error = $5::jsonb, lease_expires_at = null
          from old where t.id = old.id
        returning t.id, t.status, t.run_at, t.attempt, t.lease_owner, t.started_at,
                  old.status as from_status
      ), hist as (
        -- The attempt's start goes with its failure: the next attempt's start
        -- overwrites the row's started_at.
        insert into ${h} (task_id, from_status, to_status, node, attempt, detail)
        select id, from_status, status, lease_owner, attempt,
               $5::jsonb || jsonb_build_object('startedAt', started_at)
          from upd
      ), ${schedulePolicy(s)}
      select status, run_at from upd`,

    // A running task whose cancellation was requested, aborted by its worker.
    finishCancelled: `
      with old as (
        select id, status from ${t}
         where id = $1 and attempt = $2 and status in ('claimed', 'running')
         for update
      ), upd as (
        update ${t} t set status = 'cancelled', finished_at = now(), lease_expires_at = null
          from old where t.id = old.id
        returning t.id, t.attempt, t.lease_owner, old.status as from_status
      ), hist as (
        insert into ${h} (task_id, from_status, to_status, node, attempt, detail)
        select id, from_status, 'cancelled', lease_owner, attempt, $3::jsonb from upd
      )
      select id from upd`,

    cancel: `
      with old as (
        select id, status, attempt from ${t} where id = $1 for update
      ), upd as (
        update ${t} t
           set status = case when old.status in ('pending', 'retry')
                             then 'cancelled'::${s}.task_status else t.status end,
               cancel_requested = true,
               finished_at = case when old.status in ('pending', 'retry') then now()
                                  else t.finished_at end
          from old
         where t.id = old.id and old.status not in ('completed', 'dead_letter', 'cancelled')
        returning t.id, t.status, t.attempt, old.status as from_status
      ), hist as (
        insert into ${h} (task_id, from_status, to_status, node, attempt, detail)
        select id, from_status, 'cancelled', $2, attempt, $3::jsonb from upd
         where status = 'cancelled'
      )
      select old.status as old_status, upd.status as new_status
        from old left join upd on true`,

    // Graceful shutdown: give unfinished tasks back without charging the attempt
    // (a task whose cancellation was requested ends cancelled instead). The
    // attempt number is kept, as every fencing token must only grow: the next
    // claim takes the next number, and max_attempts grows by one instead, so
    // the task keeps as many tries as it had.
    release: `
      with old as (
        select t.id, t.status from ${t} t
          join unnest($1::bigint[], $2::int[]) as r(id, attempt)
            on t.id = r.id and t.attempt = r.attempt
         where t.status in ('claimed', 'running')
         for update of t
      ), upd as (
        update ${t} t
           set status = case when t.cancel_requested then 'cancelled'::${s}.task_status
                             else 'pending'::${s}.task_status end,
               max_attempts = case when t.cancel_requested then t.max_attempts
                                   else t.max_attempts + 1 end,
               finished_at = case when t.cancel_requested then now() end,
               lease_owner = null, lease_expires_at = null,
               claimed_at = case when t.cancel_requested then t.claimed_at end,
               started_at = case when t.cancel_requested then t.started_at end,
               run_at = case when t.cancel_requested then t.run_at else now() end
          from old where t.id = old.id
        returning t.id, t.attempt, t.status, old.status as from_status
      ), hist as (
        insert into ${h} (task_id, from_status, to_status, node, attempt, detail)
        select id, from_status, status, $3, attempt, '{"reason":"released"}'::jsonb from upd
      )
      select id, status::text as status from upd`,

    redrive: `
      with old as (
        select id, status from ${t} where id = $1 for update
      ), upd as (
        update ${t} t
           set status = 'pending', run_at = now(), max_attempts = t.attempt + $2,
               finished_at = null, lease_owner = null, lease_expires_at = null,
               cancel_requested = false
          from old where t.id = old.id and old.status = 'dead_letter'
        returning t.id, t.attempt
      ), hist as (
        insert into ${h} (task_id, from_status, to_status, node, attempt, detail)
        select id, 'dead_letter', 'pending', $3, attempt, jsonb_build_object('reason', 'redrive', 'attempts', $2::int)
          from upd
      )
      select old.status as old_status, upd.id is not null as redriven from old left join upd on true`,

    get: `select ${TASK_COLUMNS} from ${t} where id = $1`,

    attemptOf: `select id, status, attempt from ${t} where id = any($1::bigint[])`,

    list: `
      select ${TASK_COLUMNS} from ${t}
       where ($1::${s}.task_status[] is null or status = any($1::${s}.task_status[]))
         and ($2::text is null or type = $2)
         and ($3::text is null or queue = $3)
         and ($4::bigint is null or id < $4)
       order by id desc
       limit $5`,

    counts: `select status, count(*)::int as n from ${t} group by status`,

    // Tasks due for longer than $1 ms that no node which beat within $2 ms
    // handles (its heartbeat info names its queue and types), among at most
    // $3 due tasks: a sample, so a large backlog costs one bounded read.
    unhandled: `
      with due as (
        select type, queue from ${t}
         where status in ('pending', 'retry') and run_at <= now() - $1 * interval '1 millisecond'
         limit $3
      ), handled as (
        select distinct h.info->>'queue' as queue, x.type
          from ${s}.health_check h
          cross join lateral jsonb_array_elements_text(
            case when jsonb_typeof(h.info->'types') = 'array' then h.info->'types' else '[]' end
          ) as x(type)
         where h.last_heartbeat > (now() at time zone 'utc') - $2 * interval '1 millisecond'
      )
      select d.type, d.queue, count(*)::int as n
        from due d
       where not exists (select 1 from handled x where x.type = d.type and x.queue = d.queue)
       group by d.type, d.queue
       order by n desc, d.type, d.queue
       limit 20`,

    history: `
      select task_id, from_status, to_status, at, node, attempt, detail
        from ${h} where task_id = $1 order by id`,
  };
}

/**
 * Rescue of expired leases. With a fence, the statement first takes a share
 * lock on the group's token row and matches the term: a concurrent grant
 * waits for it, and a grant that committed first makes it change nothing.
 */
export function rescueSql(s: string, fenced: boolean): string {
  const t = `${s}.tasks`;
  const fence = fenced
    ? `fence as (
         select term from ${s}.token_holder where group_id = $3 and term = $4 for share
       ),`
    : '';
  const fenceCond = fenced ? 'and exists (select 1 from fence)' : '';
  return `
    with ${fence} expired as (
      select id, status from ${t}
       where status in ('claimed', 'running') and lease_expires_at < now() ${fenceCond}
       order by lease_expires_at
       limit $1
       for update skip locked
    ), upd as (
      update ${t} t
         set status = case when t.cancel_requested then 'cancelled'::${s}.task_status
                           when t.attempt >= t.max_attempts
                           then 'dead_letter'::${s}.task_status else 'retry'::${s}.task_status end,
             run_at = now(),
             finished_at = case when t.cancel_requested or t.attempt >= t.max_attempts
                                then now() else null end,
             last_error = jsonb_build_object('message', 'lease expired', 'owner', t.lease_owner),
             lease_expires_at = null
        from expired e where t.id = e.id
      returning t.id, t.type, t.status, t.attempt, t.lease_owner, t.started_at,
                e.status as from_status
    ), hist as (
      insert into ${s}.task_history (task_id, from_status, to_status, node, attempt, detail)
      select id, from_status, status, $2, attempt,
             jsonb_build_object('reason', 'lease_expired', 'owner', lease_owner,
                                'startedAt', started_at)
        from upd
    ), ${schedulePolicy(s)}
    select id, status, type, attempt from upd`;
}

/**
 * Retention: deletes the tasks of status `$1` with ids in (`$2`, `$3`] that
 * finished more than `$4` ms ago, with their history and schedule ticks.
 * Run inside a fenced transaction (the caller's); the id window bounds what
 * one statement reads (see TaskStore.prune).
 */
export function pruneSql(s: string): string {
  const t = `${s}.tasks`;
  return `
    with victims as (
      select id from ${t}
       where status = $1::${s}.task_status and id > $2::bigint and id <= $3::bigint
         and finished_at < now() - $4 * interval '1 millisecond'
       for update skip locked
    ), ticks as (
      -- "is not null" lets the planner use the partial index on task_id.
      delete from ${s}.schedule_ticks
       where task_id is not null and task_id in (select id from victims)
    ), hist as (
      delete from ${s}.task_history where task_id in (select id from victims)
    ), del as (
      delete from ${t} where id in (select id from victims) returning id
    )
    select count(*)::int as n from del`;
}

/** The first task at or after `$1`, and whether it was created more than `$2` ms ago. */
export function createdBeforeSql(s: string): string {
  return `
    select t.id::text, t.created_at < now() - $2 * interval '1 millisecond' as old
      from ${s}.tasks t where t.id >= $1::bigint order by t.id limit 1`;
}
