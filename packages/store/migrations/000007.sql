-- A schedule's error policy is applied by the statement that dead-letters its
-- tick's task (fail or lease rescue), in the same transaction; the task that
-- ended a schedule this way is recorded, so reading the outcome back later
-- tells "this failure terminated it" from "it had ended already".
alter table :SCHEMA.schedules add column terminated_by bigint;
