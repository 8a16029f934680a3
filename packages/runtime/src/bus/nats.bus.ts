/**
 * The NATS adapter of the {@link Bus} port, over `@nats-io/transport-node`.
 *
 * Reconnects are endless (`maxReconnectAttempts: -1`) and the client
 * re-registers every subscription on the new connection, so subscribers
 * keep consuming after a server restart without any action of ours (the
 * BullMQ "workers stop after reconnect" failure; see the reconnect test in
 * `test/bus.nats.test.ts`). While disconnected, sending is refused with
 * `BusError` `DISCONNECTED` (and counted in `status().dropped`): the client
 * would take the message, then discard it at its next reconnect attempt
 * (it empties its outbound buffer on every dial), so refusing says what
 * happens. Bus messages are hints; their senders count or retry them.
 */
import {
  connect,
  ClosedConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  RequestError,
  TimeoutError,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';
import { PayloadTooLargeError } from '@baton/store';
import type {
  Bus,
  BusEvent,
  BusEventListener,
  BusHandler,
  BusMessage,
  BusStatus,
  BusSubscription,
  RequestManyOptions,
  RequestOptions,
  SubscribeOptions,
} from './bus.js';
import { BusError } from './errors.js';
import { compileNatsBusOptions, type NatsBusOptions } from './nats.options.js';

const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/**
 * Connects to NATS and returns the bus. With `waitOnFirstConnect` (the
 * default) the promise resolves once a server answers, however long that
 * takes; it rejects with `BusError` `CONNECT_FAILED` when the connection is
 * refused for good (e.g. bad credentials).
 *
 * @example
 * const bus = await createNatsBus({ servers: 'nats://127.0.0.1:4222', name: 'baton-orders-n1' });
 * await using _ = bus;
 */
export async function createNatsBus(options: NatsBusOptions): Promise<NatsBus> {
  const compiled = compileNatsBusOptions(options);
  let nc: NatsConnection;
  try {
    // The client writes into the options it gets: hand it a copy of the frozen ones.
    const { servers, tls } = compiled.connection;
    nc = await connect({
      ...compiled.connection,
      servers: [servers ?? []].flat(),
      ...(tls && { tls: { ...tls } }),
    });
  } catch (error) {
    throw new BusError(
      'CONNECT_FAILED',
      `cannot connect to NATS at ${[compiled.connection.servers].flat().join(', ')}: ${error instanceof Error ? error.message : String(error)}`,
      { servers: compiled.connection.servers },
      { cause: error },
    );
  }
  return new NatsBus(nc, compiled.closeGraceMs);
}

function toBusError(error: unknown, subject: string): Error {
  if (error instanceof BusError || error instanceof PayloadTooLargeError) return error;
  const cause = error instanceof RequestError && error.cause instanceof Error ? error.cause : error;
  if (cause instanceof TimeoutError) {
    return new BusError('TIMEOUT', `no reply on ${subject} in time`, { subject }, { cause: error });
  }
  if (
    cause instanceof NoRespondersError ||
    (error instanceof RequestError && error.isNoResponders())
  ) {
    return new BusError(
      'NO_RESPONDERS',
      `nobody listens on ${subject}`,
      { subject },
      { cause: error },
    );
  }
  if (cause instanceof ClosedConnectionError || cause instanceof DrainingConnectionError) {
    return new BusError('CLOSED', `the bus is closed (${subject})`, { subject }, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new BusError('BUS_FAILURE', `${subject}: ${message}`, { subject }, { cause: error });
}

/** The NATS adapter. Build it with {@link createNatsBus}. */
export class NatsBus implements Bus {
  readonly kind = 'nats' as const;
  readonly #nc: NatsConnection;
  readonly #closeGraceMs: number;
  readonly #listeners = new Set<BusEventListener>();
  readonly #subscriptions = new Set<Subscription>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #statusLoop: Promise<void>;
  #connected = true;
  #dropped = 0;
  #reconnects = 0;
  #handlerErrors = 0;
  #closing: Promise<void> | undefined;

  /** @internal use {@link createNatsBus}. */
  constructor(nc: NatsConnection, closeGraceMs: number) {
    this.#nc = nc;
    this.#closeGraceMs = closeGraceMs;
    this.#statusLoop = this.#watchStatus().catch((error: unknown) =>
      this.#emit({
        type: 'error',
        error: error instanceof Error ? error : new Error(String(error)),
      }),
    );
  }

  /**
   * The underlying connection, for NATS-only features (the JetStream helpers
   * of `jetstream.ts`). Not part of the {@link Bus} port.
   */
  get connection(): NatsConnection {
    return this.#nc;
  }

  async #watchStatus(): Promise<void> {
    const closed = this.#nc.closed().then((error) => {
      this.#connected = false;
      if (error) this.#emit({ type: 'error', error });
      this.#emit({ type: 'closed' });
    });
    for await (const s of this.#nc.status()) {
      switch (s.type) {
        case 'disconnect':
          this.#connected = false;
          this.#emit({ type: 'disconnected' });
          break;
        case 'reconnecting':
          this.#emit({ type: 'reconnecting' });
          break;
        case 'reconnect':
          this.#connected = true;
          this.#reconnects += 1;
          this.#emit({ type: 'reconnected', reconnects: this.#reconnects });
          break;
        case 'error':
          this.#emit({ type: 'error', error: s.error });
          break;
        default:
          break;
      }
    }
    await closed;
  }

  #emit(event: BusEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A faulty listener must not break the bus or the other listeners.
      }
    }
  }

  #handlerFailed(subject: string, error: unknown): void {
    this.#handlerErrors += 1;
    this.#emit({ type: 'handler-error', subject, error });
  }

  /** Subscribing stops when `close()` starts; sending stops when the connection closes. */
  #assertOpen(subject: string, forSubscribe = false): void {
    if ((forSubscribe && this.#closing !== undefined) || this.#nc.isClosed()) {
      throw new BusError('CLOSED', `the bus is closed (${subject})`, { subject });
    }
  }

  #checkSize(data: Uint8Array): void {
    const limit = this.#nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
    if (data.length > limit) throw new PayloadTooLargeError('data', data.length, limit);
  }

  /** Refuses to send while disconnected (see the module comment), counting it. */
  #admit(subject: string): void {
    if (this.#connected) return;
    this.#dropped += 1;
    throw new BusError(
      'DISCONNECTED',
      `NATS is disconnected: a message on ${subject} was not sent (the client keeps nothing across a reconnect)`,
      { subject },
    );
  }

  async publish(subject: string, data: Uint8Array): Promise<void> {
    this.#assertOpen(subject);
    this.#checkSize(data);
    this.#admit(subject);
    try {
      this.#nc.publish(subject, data);
    } catch (error) {
      throw toBusError(error, subject);
    }
  }

  async subscribe(
    subject: string,
    handler: BusHandler,
    options: SubscribeOptions = {},
  ): Promise<BusSubscription> {
    this.#assertOpen(subject, true);
    const nc = this.#nc;
    let sub: Subscription;
    try {
      sub = nc.subscribe(subject, {
        ...(options.queue !== undefined && { queue: options.queue }),
        callback: (err, msg) => {
          if (err) {
            this.#emit({ type: 'error', error: err });
            return;
          }
          this.#deliver(msg, handler);
        },
      });
    } catch (error) {
      throw toBusError(error, subject);
    }
    this.#subscriptions.add(sub);
    void sub.closed.then((error) => {
      this.#subscriptions.delete(sub);
      // e.g. a permissions violation: the server ended this subscription.
      if (error) this.#emit({ type: 'error', error });
    });
    // Make sure the server registered the interest before resolving. While
    // disconnected the client re-sends it on reconnect, so don't wait then.
    if (this.#connected) {
      try {
        await nc.flush();
      } catch (error) {
        sub.unsubscribe();
        throw toBusError(error, subject);
      }
    }
    return {
      subject,
      unsubscribe: async () => {
        if (sub.isClosed() || nc.isClosed()) return;
        try {
          await sub.drain();
        } catch {
          sub.unsubscribe();
        }
      },
    };
  }

  #deliver(msg: Msg, handler: BusHandler): void {
    const nc = this.#nc;
    const message: BusMessage = {
      subject: msg.subject,
      data: msg.data,
      ...(msg.reply !== undefined && msg.reply.length > 0 && { reply: msg.reply }),
      respond: async (data: Uint8Array) => {
        if (msg.reply === undefined || msg.reply.length === 0) return;
        if (nc.isClosed())
          throw new BusError('CLOSED', `the bus is closed (reply to ${msg.subject})`);
        this.#checkSize(data);
        this.#admit(msg.reply);
        try {
          nc.publish(msg.reply, data);
        } catch (error) {
          throw toBusError(error, msg.subject);
        }
      },
    };
    let result: void | Promise<void>;
    try {
      result = handler(message);
    } catch (error) {
      this.#handlerFailed(msg.subject, error);
      return;
    }
    if (result instanceof Promise) {
      const tracked: Promise<void> = result.catch((error: unknown) =>
        this.#handlerFailed(msg.subject, error),
      );
      this.#inflight.add(tracked);
      void tracked.finally(() => this.#inflight.delete(tracked));
    }
  }

  async request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Uint8Array> {
    this.#assertOpen(subject);
    this.#checkSize(data);
    this.#admit(subject);
    try {
      const reply = await this.#nc.request(subject, data, { timeout: options.timeoutMs });
      return reply.data;
    } catch (error) {
      throw toBusError(error, subject);
    }
  }

  async requestMany(
    subject: string,
    data: Uint8Array,
    options: RequestManyOptions,
  ): Promise<Uint8Array[]> {
    this.#assertOpen(subject);
    this.#checkSize(data);
    this.#admit(subject);
    const expected = options.expected;
    const replies: Uint8Array[] = [];
    if (expected !== undefined && expected <= 0) return replies;
    try {
      const iterator = await this.#nc.requestMany(subject, data, {
        maxWait: options.maxWaitMs,
        ...(expected !== undefined
          ? { strategy: 'count', maxMessages: expected }
          : { strategy: 'timer' }),
      });
      for await (const reply of iterator) replies.push(reply.data);
    } catch (error) {
      const mapped = toBusError(error, subject);
      // Nobody answering is an empty result, not a failure.
      if (!(
        mapped instanceof BusError &&
        (mapped.code === 'NO_RESPONDERS' || mapped.code === 'TIMEOUT')
      )) {
        throw mapped;
      }
    }
    return replies;
  }

  status(): BusStatus {
    const closed = this.#closing !== undefined || this.#nc.isClosed();
    return {
      kind: 'nats',
      connected: this.#connected && !closed,
      reconnects: this.#reconnects,
      handlerErrors: this.#handlerErrors,
      maxPayload: this.#nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD,
      dropped: this.#dropped,
      closed,
    };
  }

  onEvent(listener: BusEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const nc = this.#nc;
    if (!nc.isClosed()) {
      // Stop deliveries first, then let running handlers finish (and reply)
      // while the connection is still open.
      await Promise.allSettled([...this.#subscriptions].map((sub) => sub.drain()));
      if (this.#inflight.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.allSettled([...this.#inflight]),
          new Promise((resolve) => (timer = setTimeout(resolve, this.#closeGraceMs))),
        ]);
        clearTimeout(timer);
      }
      try {
        await nc.drain();
      } catch {
        await nc.close();
      }
    }
    await this.#statusLoop;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
