-- Baton schema, version 5: tasks_status_idx holds only the rows no other index
-- finds by status. `:SCHEMA` is replaced by the configured schema name.
--
-- A status change is never a HOT update, so every transition adds an entry to
-- every index whose predicate the new row version meets. Over all statuses,
-- this index took one on the claim and one on the completion of every task.
-- Pending and retry rows are in tasks_claim_idx, claimed and running rows in
-- tasks_lease_idx, and completed rows are most of the table (a listing walks
-- the primary key backwards); the index keeps the rest: dead letters,
-- cancelled tasks, and pending and retry rows again, for listings by id.
drop index :SCHEMA.tasks_status_idx;
create index tasks_status_idx on :SCHEMA.tasks (status, id)
  where status not in ('completed', 'claimed', 'running');
