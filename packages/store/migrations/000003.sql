-- Baton schema, version 3: schedules (one-time, interval, cron), Ballerina's task module.
-- `:SCHEMA` is replaced by the configured schema name (a validated identifier).
--
-- `schedules.spec` holds the trigger (kind-specific fields, times as ISO strings);
-- the columns below hold what the firing step and the policies read.

alter table :SCHEMA.schedules
  -- The grid every due time is computed from: startTime, or the creation time
  -- (PostgreSQL's clock). Interval ticks are anchor + n * interval, so they never drift.
  add column anchor_at      timestamptz not null default now(),
  add column priority       integer not null default 0,
  add column max_attempts   integer not null default 5 check (max_attempts >= 1),
  -- retryConfig of the ticks' tasks (null: the store's default backoff).
  add column retry          jsonb,
  add column error_policy   text not null default 'LOG_AND_TERMINATE'
    check (error_policy in ('LOG_AND_TERMINATE', 'LOG_AND_CONTINUE', 'TERMINATE', 'CONTINUE')),
  add column waiting_policy text not null default 'WAIT'
    check (waiting_policy in ('WAIT', 'IGNORE', 'LOG_AND_IGNORE')),
  -- Due ticks skipped by IGNORE / LOG_AND_IGNORE (never materialised).
  add column skipped_count  integer not null default 0,
  -- Why next_due_at became null: 'completed' (maxCount, endTime, a fired one-time
  -- job) or 'terminated' (the error policy, after a tick's task was dead-lettered).
  add column end_reason     text check (end_reason in ('completed', 'terminated')),
  add column ended_at       timestamptz,
  add constraint schedules_fired_count_nonnegative check (fired_count >= 0);

-- Listing a group's schedules.
create index schedules_group_idx on :SCHEMA.schedules (group_id, id);

-- From a task that ended (e.g. in dead_letter) back to its schedule.
create index schedule_ticks_task_idx on :SCHEMA.schedule_ticks (task_id) where task_id is not null;
