/**
 * The bus port: how a node's actors talk to each other and to clients.
 *
 * Glossary
 * - **subject**: a dot-separated address (`baton.<group>.dispatch.default`,
 *   see `subjects.ts`). Subscriptions may use the wildcards `*` (one token)
 *   and `>` (one or more trailing tokens).
 * - **message**: a subject and an opaque body (`Uint8Array`; see `codec.ts`).
 * - **request**: a message that carries a reply address; the subscriber
 *   answers with {@link BusMessage.respond}.
 * - **queue group**: subscribers sharing a `queue` name; each message goes
 *   to one of them instead of all.
 *
 * The bus carries hints; PostgreSQL carries truth. A message may be lost,
 * duplicated, reordered or late, and callers must be correct regardless.
 * Two adapters implement this port: NATS (`nats.bus.ts`) and PostgreSQL
 * LISTEN/NOTIFY. Nothing here is specific to either; the contract test suite
 * (`test/bus.contract.ts`) runs against both.
 */

/** A message delivered to a subscription. */
export interface BusMessage {
  /** The subject it was published to (concrete, never a wildcard). */
  readonly subject: string;
  readonly data: Uint8Array;
  /**
   * Opaque reply address, present when the sender waits for an answer
   * (`request` or `requestMany`). Absent for plain `publish`.
   */
  readonly reply?: string;
  /**
   * Answers the sender. Resolves once the answer is handed to the transport;
   * a no-op that resolves when the message has no `reply`.
   */
  respond(data: Uint8Array): Promise<void>;
}

/**
 * Handles one message. Handlers may run concurrently with each other. A
 * throw or a rejection is caught by the adapter and reported as a
 * `handler-error` status event: it never stops the subscription or the node.
 */
export type BusHandler = (message: BusMessage) => void | Promise<void>;

/** Options of {@link Bus.subscribe}. */
export interface SubscribeOptions {
  /**
   * Queue group: each message goes to one subscriber of the group rather
   * than to all of them. Without it, every subscriber gets every message.
   */
  readonly queue?: string;
}

/** A live subscription. It survives reconnects until it is unsubscribed. */
export interface BusSubscription {
  readonly subject: string;
  /** Stops delivery. Safe to call more than once. */
  unsubscribe(): Promise<void>;
}

/** Options of {@link Bus.request}. */
export interface RequestOptions {
  /** How long to wait for the reply, in milliseconds. */
  readonly timeoutMs: number;
}

/** Options of {@link Bus.requestMany}. */
export interface RequestManyOptions {
  /** How long to gather replies, in milliseconds. */
  readonly maxWaitMs: number;
  /** Stop as soon as this many replies arrived (e.g. the members known). */
  readonly expected?: number;
}

/** Which adapter a bus is. */
export type BusKind = 'nats' | 'postgres';

/** A snapshot of the bus's connection, for health checks and the status subject. */
export interface BusStatus {
  readonly kind: BusKind;
  /** True while the bus can carry messages now. */
  readonly connected: boolean;
  /** Reconnections since the bus was created (the first connect is not one). */
  readonly reconnects: number;
  /** Handler throws and rejections caught since the bus was created. */
  readonly handlerErrors: number;
  /** Largest message body the transport carries, in bytes. */
  readonly maxPayload: number;
  /**
   * Messages this bus dropped: on NATS, refused while disconnected; on
   * PostgreSQL, received while more than `maxQueuedReads` waited for the
   * database.
   */
  readonly dropped: number;
  /** True once `close()` was called. */
  readonly closed: boolean;
}

/** A change of the bus's connection, or a failure it absorbed. */
export type BusEvent =
  | { readonly type: 'disconnected' }
  | { readonly type: 'reconnecting' }
  | { readonly type: 'reconnected'; readonly reconnects: number }
  | { readonly type: 'error'; readonly error: Error }
  | { readonly type: 'handler-error'; readonly subject: string; readonly error: unknown }
  | { readonly type: 'closed' };

/** A listener of {@link BusEvent}s. */
export type BusEventListener = (event: BusEvent) => void;

/**
 * The bus port.
 *
 * @example
 * const sub = await bus.subscribe(s.statusOf(node), (msg) => msg.respond(encodeMessage(snapshot())));
 * const replies = await bus.requestMany(s.status, encodeMessage({}), { maxWaitMs: 500, expected: 3 });
 * await sub.unsubscribe();
 * await bus.close();
 */
export interface Bus extends AsyncDisposable {
  readonly kind: BusKind;
  /**
   * Sends a message (at most once). Resolves when the transport accepted it,
   * which is not a delivery guarantee. Rejects with `PayloadTooLargeError`
   * above {@link BusStatus.maxPayload} and with a `BusError` (`CLOSED`)
   * after `close()`.
   */
  publish(subject: string, data: Uint8Array): Promise<void>;
  /**
   * Subscribes `handler` to `subject` (wildcards allowed). Resolves once the
   * subscription is registered with the server, so a message published
   * afterwards, by anyone, is delivered to it.
   */
  subscribe(
    subject: string,
    handler: BusHandler,
    options?: SubscribeOptions,
  ): Promise<BusSubscription>;
  /**
   * Sends a request and resolves with the first reply. Rejects with a
   * `BusError`: `TIMEOUT` after `timeoutMs`, `NO_RESPONDERS` when the
   * adapter knows that nobody listens, `CLOSED` after `close()`.
   */
  request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Uint8Array>;
  /**
   * Sends a request and gathers replies until `expected` arrived or
   * `maxWaitMs` elapsed, whichever comes first. Never rejects for lack of
   * replies: resolves with what arrived, possibly nothing.
   */
  requestMany(
    subject: string,
    data: Uint8Array,
    options: RequestManyOptions,
  ): Promise<Uint8Array[]>;
  /** The current connection state. */
  status(): BusStatus;
  /** Registers a listener of connection events; returns a function that removes it. */
  onEvent(listener: BusEventListener): () => void;
  /**
   * Stops every subscription, lets handlers already called finish, and
   * closes the connection. Idempotent.
   */
  close(): Promise<void>;
}
