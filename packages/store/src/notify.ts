/**
 * What the PostgreSQL bus adapter needs from the database: NOTIFY, LISTEN,
 * bodies stored by reference, and queue-group claims. The adapter itself
 * (channels, envelopes, reconnects) lives in `@baton/runtime`; this module is
 * only its SQL, so that the store stays the one package that contains SQL.
 *
 * Glossary
 * - **channel**: a PostgreSQL LISTEN/NOTIFY channel. An identifier: this
 *   module only accepts lower-case `[a-z_][a-z0-9_]*` names of at most 63
 *   bytes, and quotes them itself, because LISTEN takes no parameters.
 * - **payload**: the text of one notification, shorter than 8000 bytes.
 * - **stored body**: a message body too large for a payload, kept in
 *   `bus_payloads` under its message id for a short time.
 * - **claim**: a row `(message id, queue group)`; whoever inserts it first
 *   delivers the message to its member of the group.
 */
import type { Pool } from 'pg';
import { InvalidArgumentError, PayloadTooLargeError } from './errors.js';
import { listenSql, notifySql, unlistenSql } from './notify.sql.js';

/** Longest channel name PostgreSQL keeps (NAMEDATALEN - 1), in bytes. */
export const MAX_CHANNEL_BYTES = 63;
/** Longest NOTIFY payload, in bytes: PostgreSQL requires fewer than 8000. */
export const MAX_NOTIFY_PAYLOAD_BYTES = 7999;

const CHANNEL = /^[a-z_][a-z0-9_]*$/;

/**
 * Validates a channel name and returns it. Throws {@link InvalidArgumentError}
 * naming `field` when it is not a lower-case identifier of 1 to 63 bytes.
 *
 * @example
 * validateChannel('baton_bus_k2x9'); // 'baton_bus_k2x9'
 * validateChannel('Bad-Name');        // throws INVALID_ARGUMENT (field 'channel')
 */
export function validateChannel(channel: unknown, field = 'channel'): string {
  if (typeof channel !== 'string' || channel.length === 0) {
    throw new InvalidArgumentError(field, 'must be a non-empty string', channel);
  }
  if (channel.length > MAX_CHANNEL_BYTES) {
    throw new InvalidArgumentError(field, `must be at most ${MAX_CHANNEL_BYTES} bytes`, channel);
  }
  if (!CHANNEL.test(channel)) {
    throw new InvalidArgumentError(
      field,
      'must be a lower-case identifier: [a-z_] then [a-z0-9_] (no quotes, dots or spaces)',
      channel,
    );
  }
  return channel;
}

/** Validates a channel name and returns it quoted for SQL text (`"name"`). */
export function quoteChannel(channel: string, field = 'channel'): string {
  return `"${validateChannel(channel, field)}"`;
}

function messageId(id: number): string {
  if (!Number.isSafeInteger(id) || id <= 0) {
    throw new InvalidArgumentError('messageId', 'must be a positive safe integer', id);
  }
  return String(id);
}

function payloadText(payload: string): string {
  const size = Buffer.byteLength(payload, 'utf8');
  if (size > MAX_NOTIFY_PAYLOAD_BYTES) {
    throw new PayloadTooLargeError('payload', size, MAX_NOTIFY_PAYLOAD_BYTES);
  }
  return payload;
}

/** A connection that LISTENs: the bus's dedicated `pg.Client`, never a pooled one. */
export interface ListenConnection {
  query(text: string): Promise<unknown>;
}

/** Rows removed by {@link NotifyStore.sweep}. */
export interface SweepResult {
  readonly payloads: number;
  readonly claims: number;
}

/**
 * The bus's statements. NOTIFYs go through the pool; LISTEN and UNLISTEN run
 * on the caller's dedicated connection ({@link NotifyStore.listen}).
 *
 * @example
 * const notify = new NotifyStore(pool, quoteSchema('baton'));
 * await NotifyStore.listen(listener, 'baton_bus_k2x9');
 * await notify.notify('baton_bus_k2x9', 'hello');
 */
export class NotifyStore {
  readonly #pool: Pool;
  readonly #sql: ReturnType<typeof notifySql>;
  readonly #claimName: string;

  constructor(pool: Pool, quotedSchema: string) {
    this.#pool = pool;
    this.#sql = notifySql(quotedSchema);
    this.#claimName = `baton.${quotedSchema}.bus.claim`;
  }

  /** LISTENs to `channel` on `connection` (validated and quoted first). */
  static async listen(connection: ListenConnection, channel: string): Promise<void> {
    await connection.query(listenSql(quoteChannel(channel)));
  }

  /** Stops listening to `channel` on `connection`. */
  static async unlisten(connection: ListenConnection, channel: string): Promise<void> {
    await connection.query(unlistenSql(quoteChannel(channel)));
  }

  /** True when the schema has the bus tables (migration 000002 applied). */
  async ready(): Promise<boolean> {
    const { rows } = await this.#pool.query<{ ok: boolean }>(this.#sql.check, [
      ...this.#sql.checkArgs,
    ]);
    return rows[0]?.ok === true;
  }

  /**
   * Sends `payload` on `channel`. Throws {@link PayloadTooLargeError} (field
   * `payload`) above {@link MAX_NOTIFY_PAYLOAD_BYTES}.
   */
  async notify(channel: string, payload: string): Promise<void> {
    await this.#pool.query({
      name: 'baton.bus.notify',
      text: this.#sql.notify,
      values: [validateChannel(channel), payloadText(payload)],
    });
  }

  /**
   * Stores `body` under `id` and sends `payload` on `channel`, in one
   * transaction: a listener that hears the payload can read the body with
   * {@link readStored} until {@link sweep} removes it.
   */
  async notifyStored(
    channel: string,
    payload: string,
    id: number,
    body: Uint8Array,
  ): Promise<void> {
    await this.#pool.query(this.#sql.notifyStored, [
      validateChannel(channel),
      payloadText(payload),
      messageId(id),
      Buffer.from(body.buffer, body.byteOffset, body.byteLength),
    ]);
  }

  /** The body stored under `id`, or `undefined` once it was swept (or never stored). */
  async readStored(id: number): Promise<Uint8Array | undefined> {
    const { rows } = await this.#pool.query<{ data: Buffer }>(this.#sql.readStored, [
      messageId(id),
    ]);
    const data = rows[0]?.data;
    return data === undefined
      ? undefined
      : new Uint8Array(data.buffer, data.byteOffset, data.length);
  }

  /**
   * Claims message `id` for `queueGroup`: true for exactly one caller, across
   * every process, until {@link sweep} removes the claim.
   */
  async claim(id: number, queueGroup: string): Promise<boolean> {
    if (typeof queueGroup !== 'string' || queueGroup.length === 0) {
      throw new InvalidArgumentError('queueGroup', 'must be a non-empty string', queueGroup);
    }
    const { rowCount } = await this.#pool.query({
      name: this.#claimName,
      text: this.#sql.claim,
      values: [messageId(id), queueGroup],
    });
    return rowCount === 1;
  }

  /** Removes stored bodies and claims older than `olderThanMs` (PostgreSQL's clock). */
  async sweep(olderThanMs: number): Promise<SweepResult> {
    if (!Number.isSafeInteger(olderThanMs) || olderThanMs < 0) {
      throw new InvalidArgumentError('olderThanMs', 'must be a non-negative integer', olderThanMs);
    }
    const { rows } = await this.#pool.query<{ payloads: number; claims: number }>(this.#sql.sweep, [
      olderThanMs,
    ]);
    return { payloads: rows[0]?.payloads ?? 0, claims: rows[0]?.claims ?? 0 };
  }
}
