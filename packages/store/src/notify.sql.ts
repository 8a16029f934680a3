/**
 * The SQL of the PostgreSQL bus (LISTEN/NOTIFY): notifications, large bodies
 * stored by reference (`bus_payloads`), queue-group claims (`bus_claims`).
 * `s` is a quoted schema (see `quoteSchema`); channels are quoted by
 * `quoteChannel` before they reach `listen`/`unlisten`, which take no parameters.
 */
export function notifySql(s: string) {
  const payloads = `${s}.bus_payloads`;
  const claims = `${s}.bus_claims`;
  return {
    // $1 channel, $2 payload
    notify: `select pg_notify($1::text, $2::text)`,
    // $1 channel, $2 payload, $3 message id, $4 body: stored and notified in one
    // transaction, so a receiver that hears the notification finds the row.
    notifyStored: `
      with stored as (
        insert into ${payloads} (id, data) values ($3::bigint, $4::bytea)
      )
      select pg_notify($1::text, $2::text)`,
    // $1 message id
    readStored: `select data from ${payloads} where id = $1::bigint`,
    // $1 message id, $2 queue group
    claim: `
      insert into ${claims} (message_id, queue_group) values ($1::bigint, $2::text)
      on conflict do nothing`,
    // $1 age in milliseconds
    sweep: `
      with p as (
        delete from ${payloads} where created_at < now() - $1::bigint * interval '1 millisecond'
        returning 1
      ), c as (
        delete from ${claims} where created_at < now() - $1::bigint * interval '1 millisecond'
        returning 1
      )
      select (select count(*) from p)::int as payloads, (select count(*) from c)::int as claims`,
    // $1 quoted-schema-qualified table names
    check: `select to_regclass($1::text) is not null and to_regclass($2::text) is not null as ok`,
    checkArgs: [payloads, claims] as const,
  };
}

/** `listen "<channel>"`: the channel must already be quoted by `quoteChannel`. */
export const listenSql = (quotedChannel: string): string => `listen ${quotedChannel}`;
/** `unlisten "<channel>"`: the channel must already be quoted by `quoteChannel`. */
export const unlistenSql = (quotedChannel: string): string => `unlisten ${quotedChannel}`;
