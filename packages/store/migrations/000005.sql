-- Baton schema, version 5: tasks_status_idx leaves out completed tasks.
-- `:SCHEMA` is replaced by the configured schema name.
--
-- A status change is never a HOT update, so every transition adds an entry to
-- every index whose predicate the new row version meets. Over all statuses,
-- this index took one on the completion of every task, for rows that are most
-- of the table and that a listing finds by walking the primary key backwards.
-- Listings and counts of the other statuses, one or several at once, still
-- use it.
--
-- Upgrading: the migration runs in one transaction, so the table is locked
-- while the index is built (a scan of the unfinished rows' keys).
drop index if exists :SCHEMA.tasks_status_idx;
create index tasks_status_idx on :SCHEMA.tasks (status, id) where status <> 'completed';
