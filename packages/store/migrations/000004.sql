-- Runs of coordinated (warm-backup) services: one row per run, written by the
-- token bearer inside a transaction fenced by its term. Operators and tests
-- read which node ran what in which term; maxCount counts these rows, so it
-- holds across failovers.
create table :SCHEMA.service_runs (
  id         bigint generated always as identity primary key,
  group_id   varchar(255) not null,
  service    text not null,
  term       bigint not null,
  node       varchar(255) not null,
  started_at timestamptz not null default now()
);
create index service_runs_service_idx on :SCHEMA.service_runs (group_id, service, id);
