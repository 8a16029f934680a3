-- Runs of coordinated services are counted per service, so the run log
-- (service_runs) can be pruned by retention without changing what maxCount
-- sees. The counts start from the runs logged so far.
create table :SCHEMA.service_run_counts (
  group_id varchar(255) not null,
  service  text not null,
  runs     bigint not null,
  primary key (group_id, service)
);
insert into :SCHEMA.service_run_counts (group_id, service, runs)
select group_id, service, count(*) from :SCHEMA.service_runs group by group_id, service;
-- Retention deletes the oldest runs: found by time.
create index service_runs_started_idx on :SCHEMA.service_runs (started_at);
