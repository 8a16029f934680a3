-- Baton schema, version 2: the PostgreSQL LISTEN/NOTIFY bus.
-- `:SCHEMA` is replaced by the configured schema name (a validated identifier).
--
-- Both tables are UNLOGGED: they hold bus hints that live for seconds, so they
-- skip the WAL (cheap writes) and are emptied after a crash, which the bus
-- tolerates (a message may be lost; PostgreSQL's task rows carry the truth).

-- Bodies too large for a NOTIFY payload (8000 bytes): the notification carries
-- the message id, receivers read the body here. Swept after a TTL.
create unlogged table :SCHEMA.bus_payloads (
  id         bigint primary key,
  data       bytea not null,
  created_at timestamptz not null default now()
);
create index bus_payloads_created_idx on :SCHEMA.bus_payloads (created_at);

-- Queue-group delivery: every listener hears every NOTIFY, so the member that
-- inserts (message, group) first delivers it; the others' inserts conflict.
-- Swept after a TTL.
create unlogged table :SCHEMA.bus_claims (
  message_id  bigint not null,
  queue_group text not null,
  created_at  timestamptz not null default now(),
  primary key (message_id, queue_group)
);
create index bus_claims_created_idx on :SCHEMA.bus_claims (created_at);
