-- Baton schema, version 1.
-- `:SCHEMA` is replaced by the configured schema name (a validated identifier).
-- Applied inside one transaction under an advisory lock (see src/migrate.ts).

create type :SCHEMA.task_status as enum (
  'pending', 'claimed', 'running', 'retry', 'completed', 'dead_letter', 'cancelled'
);

create table :SCHEMA.tasks (
  id               bigint generated always as identity primary key,
  type             text not null,
  queue            text not null default 'default',
  payload          jsonb not null default 'null'::jsonb,
  status           :SCHEMA.task_status not null default 'pending',
  priority         integer not null default 0,
  run_at           timestamptz not null default now(),
  attempt          integer not null default 0,
  max_attempts     integer not null default 5,
  idempotency_key  text,
  lease_owner      text,
  lease_expires_at timestamptz,
  cancel_requested boolean not null default false,
  last_error       jsonb,
  result           jsonb,
  created_at       timestamptz not null default now(),
  claimed_at       timestamptz,
  started_at       timestamptz,
  finished_at      timestamptz,
  constraint tasks_attempt_bounds check (attempt >= 0 and attempt <= max_attempts),
  constraint tasks_max_attempts_positive check (max_attempts >= 1)
);

-- The claim path: only claimable rows are in this index, so finished rows never
-- slow a claim down however large the table grows.
create index tasks_claim_idx on :SCHEMA.tasks (queue, priority desc, run_at, id)
  where status in ('pending', 'retry');
-- Lease rescue: only rows that hold a lease.
create index tasks_lease_idx on :SCHEMA.tasks (lease_expires_at)
  where status in ('claimed', 'running');
-- Idempotency: a unique constraint, not check-then-insert.
create unique index tasks_idempotency_key_idx on :SCHEMA.tasks (idempotency_key)
  where idempotency_key is not null;
-- Counts and listings by status (newest first). Listing by time uses the primary key.
-- (Since 000005 it leaves out completed tasks.)
-- Every index here is written on each transition (a status change is never a HOT
-- update), so the set is kept small on purpose.
create index tasks_status_idx on :SCHEMA.tasks (status, id);

-- Transitions off the happy path (the happy path's times are columns of the task row).
create table :SCHEMA.task_history (
  id          bigint generated always as identity primary key,
  task_id     bigint not null,
  from_status :SCHEMA.task_status,
  to_status   :SCHEMA.task_status not null,
  at          timestamptz not null default now(),
  node        text,
  attempt     integer not null,
  detail      jsonb
);
create index task_history_task_idx on :SCHEMA.task_history (task_id, id);

-- Warm backup (seed 000): Ballerina's tables, plus what fencing needs.
create table :SCHEMA.token_holder (
  group_id         varchar(255) primary key,
  task_id          varchar(255),
  term             bigint not null default 0,
  granted_at       timestamptz,
  lease_expires_at timestamptz
);

create table :SCHEMA.health_check (
  task_id        varchar(255) not null,
  group_id       varchar(255) not null,
  last_heartbeat timestamp not null default (now() at time zone 'utc'),
  started_at     timestamptz not null default now(),
  info           jsonb,
  primary key (task_id, group_id)
);

-- Append-only log of every grant of the token.
create table :SCHEMA.token_grants (
  group_id   varchar(255) not null,
  term       bigint not null,
  task_id    varchar(255) not null,
  granted_at timestamptz not null default now(),
  reason     text not null,
  primary key (group_id, term)
);

-- Recurring and one-time schedules (the scheduling issue fills these in).
create table :SCHEMA.schedules (
  id            text primary key,
  group_id      varchar(255) not null,
  type          text not null,
  queue         text not null default 'default',
  payload       jsonb not null default 'null'::jsonb,
  kind          text not null check (kind in ('once', 'interval', 'cron')),
  spec          jsonb not null,
  next_due_at   timestamptz,
  fired_count   integer not null default 0,
  paused        boolean not null default false,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now()
);
create index schedules_due_idx on :SCHEMA.schedules (group_id, next_due_at) where not paused;

-- One row per materialised tick: a second firer of the same tick is harmless.
create table :SCHEMA.schedule_ticks (
  schedule_id text not null,
  due_at      timestamptz not null,
  task_id     bigint,
  fired_at    timestamptz not null default now(),
  primary key (schedule_id, due_at)
);
