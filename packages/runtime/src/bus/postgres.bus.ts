/**
 * The PostgreSQL LISTEN/NOTIFY adapter of the {@link Bus} port: the embedded
 * default, for installs that have one PostgreSQL and nothing else.
 *
 * - **Connections**: one dedicated LISTEN connection per bus (a `pg.Client`,
 *   `application_name` `<applicationName>-listener`); NOTIFYs, claims and
 *   stored bodies go through a pool.
 * - **Channels**: one per subject root (`baton.<group>`, see
 *   `postgres.channels.ts`); subjects and wildcards are matched in process.
 *   The root of a subscription must be literal.
 * - **Queue groups**: every listener hears every NOTIFY, so a process with
 *   members of a group claims the message for the group (one insert into
 *   `bus_claims`, unique on message and group); only the winner delivers it,
 *   to one of its local members. Claims are swept after `retentionMs`.
 * - **Large messages**: a body whose envelope does not fit one NOTIFY
 *   payload (8000 bytes, about 5.9 KB of body after base64) is stored in
 *   `bus_payloads` in the NOTIFY's transaction and travels by reference;
 *   receivers read it, and rows are swept after `retentionMs`. Bodies above
 *   `maxPayloadBytes` (default 1 MiB, reported by `status().maxPayload`) are
 *   refused with `PayloadTooLargeError`.
 * - **Requests**: each bus listens to its own inbox root `_INBOX.<random>`;
 *   a request's reply subject is `_INBOX.<random>.<n>`. Nobody listening is
 *   not detectable here: a request nobody answers fails with `TIMEOUT`,
 *   never `NO_RESPONDERS`.
 * - **Reconnects**: when the LISTEN connection dies, the bus reports
 *   `disconnected`, reconnects with exponential backoff and jitter
 *   (`reconnecting` per attempt), LISTENs again to every channel and reports
 *   `reconnected`. **Messages notified while the listener is disconnected
 *   are lost** (PostgreSQL does not keep them), as are replies due in that
 *   time: the bus carries hints, PostgreSQL's tables carry the truth.
 *   Publishing needs the pool only, and fails with `BUS_FAILURE` while the
 *   database is unreachable (nothing is buffered).
 */
import pg from 'pg';
import { MAX_NOTIFY_PAYLOAD_BYTES, NotifyStore, PayloadTooLargeError } from '@baton/store';
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
import {
  compilePostgresBusOptions,
  type CompiledPostgresBusOptions,
  type PostgresBusOptions,
} from './postgres.options.js';
import {
  ChannelNames,
  parsePublishSubject,
  parseSubscribeSubject,
  subjectMatches,
  validateQueueGroup,
} from './postgres.channels.js';
import {
  decodeEnvelope,
  encodeEnvelope,
  newMessageId,
  type Envelope,
} from './postgres.envelope.js';
import { ReplyInbox, toBusError, type ReplyWait } from './postgres.inbox.js';
import { ReadGate } from './postgres.gate.js';
import { PgListener } from './postgres.listener.js';

interface LocalSubscription {
  readonly tokens: readonly string[];
  readonly channel: string;
  readonly queue: string | undefined;
  readonly handler: BusHandler;
  active: boolean;
}

/**
 * Connects the LISTEN connection and returns the bus. Rejects with
 * `BusError` `CONNECT_FAILED` when PostgreSQL cannot be reached or the
 * schema lacks the bus tables (store migration 000002), and with
 * `InvalidArgumentError` naming the option when an option is wrong.
 *
 * @example
 * const bus = await createPostgresBus({ connectionString: url, applicationName: 'baton-orders-n1' });
 * await using _ = bus;
 */
export async function createPostgresBus(options: PostgresBusOptions): Promise<PostgresBus> {
  const compiled = compilePostgresBusOptions(options);
  const bus = new PostgresBus(compiled);
  await bus.start();
  return bus;
}

/** The PostgreSQL LISTEN/NOTIFY adapter. Build it with {@link createPostgresBus}. */
export class PostgresBus implements Bus {
  readonly kind = 'postgres' as const;
  readonly #opts: CompiledPostgresBusOptions;
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  readonly #store: NotifyStore;
  readonly #channels: ChannelNames;
  readonly #inbox: ReplyInbox;
  readonly #inboxChannel: string;
  readonly #listener: PgListener;
  readonly #listeners = new Set<BusEventListener>();
  readonly #subs = new Map<string, Set<LocalSubscription>>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #background = new Set<Promise<unknown>>();
  readonly #onPoolError = (error: Error): void => this.#emit({ type: 'error', error });
  readonly #reads: ReadGate;
  /** When the last "dropped" error event went out (one a second at most). */
  #droppedReportedAt = 0;
  #timers: NodeJS.Timeout[] = [];
  #roundRobin = 0;
  #handlerErrors = 0;
  #started = false;
  #stopping = false;
  #ended = false;
  #closing: Promise<void> | undefined;

  /** @internal use {@link createPostgresBus}. */
  constructor(options: CompiledPostgresBusOptions) {
    this.#opts = options;
    this.#reads = new ReadGate(options.maxConcurrentReads, options.maxQueuedReads);
    this.#ownsPool = options.pool === undefined;
    this.#pool = options.pool ?? new pg.Pool({ ...options.poolConfig });
    this.#pool.on('error', this.#onPoolError);
    this.#store = new NotifyStore(this.#pool, options.quotedSchema);
    this.#channels = new ChannelNames(options.channelPrefix);
    this.#inbox = new ReplyInbox();
    this.#inboxChannel = this.#channels.of(this.#inbox.root);
    this.#listener = new PgListener(options, {
      wanted: () => [this.#inboxChannel, ...this.#subs.keys()],
      onNotification: (channel, payload) => this.#onNotification(channel, payload),
      emit: (event) => this.#emit(event),
    });
  }

  /** @internal called once by {@link createPostgresBus}. */
  async start(): Promise<void> {
    if (this.#started) throw new BusError('BUS_FAILURE', 'the PostgreSQL bus is already started');
    this.#started = true;
    try {
      if (!(await this.#store.ready())) {
        throw new Error(
          `schema ${this.#opts.schema} lacks the bus tables: apply the store's migrations (000002)`,
        );
      }
      await this.#listener.start();
    } catch (error) {
      await this.close();
      throw new BusError(
        'CONNECT_FAILED',
        `cannot start the PostgreSQL bus: ${error instanceof Error ? error.message : String(error)}`,
        { schema: this.#opts.schema },
        { cause: error },
      );
    }
    const every = (ms: number, fn: () => Promise<unknown>): void => {
      const timer = setInterval(() => this.#track(fn()), ms);
      timer.unref();
      this.#timers.push(timer);
    };
    // Sweep at least once a minute, so a long retention still gets swept in time.
    every(Math.min(this.#opts.retentionMs, 60_000), () =>
      this.#store.sweep(this.#opts.retentionMs),
    );
    every(this.#opts.pingIntervalMs, () => this.#listener.ping());
  }

  // ----- receiving ------------------------------------------------------------

  #onNotification(channel: string, payload: string | undefined): void {
    const subs = this.#subs.get(channel);
    const forInbox = channel === this.#inboxChannel;
    if (subs === undefined && !forInbox) return;
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(payload);
    } catch (error) {
      this.#emit({ type: 'error', error: error as Error });
      return;
    }
    if (forInbox && this.#inbox.wants(envelope.subject)) {
      if (typeof envelope.body !== 'number') this.#inbox.deliver(envelope.subject, envelope.body);
      else
        // A reply to this node's own request: not gated (it is bounded by
        // the requests this node made, and must not wait behind a flood).
        this.#track(
          this.#body(envelope).then((body) => body && this.#inbox.deliver(envelope.subject, body)),
        );
    }
    if (subs === undefined || this.#stopping) return;
    const tokens = envelope.subject.split('.');
    const plain: LocalSubscription[] = [];
    const groups = new Map<string, LocalSubscription[]>();
    for (const sub of subs) {
      if (!sub.active || !subjectMatches(sub.tokens, tokens)) continue;
      if (sub.queue === undefined) plain.push(sub);
      else groups.set(sub.queue, [...(groups.get(sub.queue) ?? []), sub]);
    }
    if (plain.length === 0 && groups.size === 0) return;
    if (groups.size === 0 && typeof envelope.body !== 'number') {
      for (const sub of plain) this.#deliver(sub, envelope, envelope.body);
      return;
    }
    this.#track(this.#gated(envelope, () => this.#deliverClaimed(envelope, plain, groups)));
  }

  /** Runs a message's database work through the read gate; a dropped one is reported. */
  async #gated<T>(envelope: Envelope, work: () => Promise<T>): Promise<T | undefined> {
    const before = this.#reads.dropped;
    const result = await this.#reads.run(work);
    if (this.#reads.dropped > before) {
      const now = Date.now();
      if (now - this.#droppedReportedAt >= 1000) {
        this.#droppedReportedAt = now;
        this.#emit({
          type: 'error',
          error: new BusError(
            'BUS_FAILURE',
            `receiving faster than the database answers: dropped a message on ${envelope.subject} (${this.#reads.dropped} in all; more than maxQueuedReads waited)`,
            { subject: envelope.subject, dropped: this.#reads.dropped },
          ),
        });
      }
    }
    return result;
  }

  /** Claims the message for each local queue group, then delivers to plain members and winners. */
  async #deliverClaimed(
    envelope: Envelope,
    plain: LocalSubscription[],
    groups: Map<string, LocalSubscription[]>,
  ): Promise<void> {
    const winners = await Promise.all(
      [...groups].map(async ([queue, members]) => {
        // Closing: leave the message to the group's other members, unclaimed.
        if (this.#stopping) return undefined;
        if (!(await this.#store.claim(envelope.id, queue))) return undefined;
        // The turn passes on the messages this bus won, so every member gets its share of them.
        return members[this.#roundRobin++ % members.length];
      }),
    );
    const targets = [...plain, ...winners.filter((w) => w !== undefined)];
    if (targets.length === 0) return;
    const body = await this.#body(envelope);
    if (body === undefined) return;
    for (const sub of targets) if (!this.#stopping) this.#deliver(sub, envelope, body);
  }

  /** The envelope's body, read from `bus_payloads` when it travels by reference. */
  async #body(envelope: Envelope): Promise<Uint8Array | undefined> {
    if (typeof envelope.body !== 'number') return envelope.body;
    const body = await this.#store.readStored(envelope.id);
    if (body === undefined) {
      const error = new BusError(
        'BUS_FAILURE',
        `the stored body of a message on ${envelope.subject} is gone (older than retentionMs?)`,
        { subject: envelope.subject, id: envelope.id },
      );
      this.#emit({ type: 'error', error });
    }
    return body;
  }

  #deliver(sub: LocalSubscription, envelope: Envelope, data: Uint8Array): void {
    if (!sub.active) return;
    const { subject, reply } = envelope;
    const message: BusMessage = {
      subject,
      data,
      ...(reply !== undefined && { reply }),
      respond: async (answer: Uint8Array) => {
        if (reply === undefined) return;
        await this.#send(reply, answer, undefined, 'reply');
      },
    };
    let result: void | Promise<void>;
    try {
      result = sub.handler(message);
    } catch (error) {
      this.#handlerFailed(subject, error);
      return;
    }
    if (result instanceof Promise) {
      const tracked: Promise<void> = result.catch((error: unknown) =>
        this.#handlerFailed(subject, error),
      );
      this.#inflight.add(tracked);
      void tracked.finally(() => this.#inflight.delete(tracked));
    }
  }

  #handlerFailed(subject: string, error: unknown): void {
    this.#handlerErrors += 1;
    this.#emit({ type: 'handler-error', subject, error });
  }

  /** Keeps a background promise until it settles; its failure becomes an `error` event. */
  #track(promise: Promise<unknown>): void {
    const tracked = promise.catch((error: unknown) => {
      if (!this.#ended) this.#emit({ type: 'error', error: toBusError(error, 'background work') });
    });
    this.#background.add(tracked);
    void tracked.finally(() => this.#background.delete(tracked));
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

  // ----- sending --------------------------------------------------------------

  async #send(
    subject: string,
    data: Uint8Array,
    reply: string | undefined,
    field = 'subject',
  ): Promise<void> {
    if (this.#ended) throw new BusError('CLOSED', `the bus is closed (${subject})`, { subject });
    const { root } = parsePublishSubject(subject, field);
    if (data.length > this.#opts.maxPayloadBytes) {
      throw new PayloadTooLargeError('data', data.length, this.#opts.maxPayloadBytes);
    }
    const channel = this.#channels.of(root);
    const id = newMessageId();
    try {
      const inline = encodeEnvelope({ id, subject, reply, body: data });
      if (inline.length <= MAX_NOTIFY_PAYLOAD_BYTES) {
        await this.#store.notify(channel, inline);
      } else {
        const reference = encodeEnvelope({ id, subject, reply, body: data.length });
        await this.#store.notifyStored(channel, reference, id, data);
      }
    } catch (error) {
      throw toBusError(error, subject, this.#ended);
    }
  }

  #assertOpen(subject: string): void {
    if (this.#stopping) throw new BusError('CLOSED', `the bus is closed (${subject})`, { subject });
  }

  async publish(subject: string, data: Uint8Array): Promise<void> {
    await this.#send(subject, data, undefined);
  }

  async subscribe(
    subject: string,
    handler: BusHandler,
    options: SubscribeOptions = {},
  ): Promise<BusSubscription> {
    this.#assertOpen(subject);
    const { tokens, root } = parseSubscribeSubject(subject);
    const queue = options.queue === undefined ? undefined : validateQueueGroup(options.queue);
    const channel = this.#channels.of(root);
    const sub: LocalSubscription = { tokens, channel, queue, handler, active: true };
    const set = this.#subs.get(channel) ?? new Set();
    set.add(sub);
    this.#subs.set(channel, set);
    const unsubscribe = async (): Promise<void> => {
      if (!sub.active) return;
      sub.active = false;
      const current = this.#subs.get(channel);
      current?.delete(sub);
      if (current?.size === 0) this.#subs.delete(channel);
      if (!this.#stopping) await this.#listener.unlisten(channel);
    };
    try {
      await this.#listener.listen(channel);
    } catch (error) {
      await unsubscribe();
      throw toBusError(error, subject, this.#stopping);
    }
    return { subject, unsubscribe };
  }

  async request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Uint8Array> {
    this.#assertOpen(subject);
    return this.#ask(subject, data, this.#inbox.one(subject, options.timeoutMs));
  }

  async requestMany(
    subject: string,
    data: Uint8Array,
    options: RequestManyOptions,
  ): Promise<Uint8Array[]> {
    this.#assertOpen(subject);
    if (options.expected !== undefined && options.expected <= 0) {
      parsePublishSubject(subject);
      return [];
    }
    return this.#ask(subject, data, this.#inbox.many(options.maxWaitMs, options.expected));
  }

  /**
   * Sends a request whose answers `wait` collects; a failed send cancels the
   * wait. The wait's timer runs from the start, so it may end (time out, or
   * the bus closes) while the send still waits for a connection: that ends
   * the request then, and its rejection is never left unhandled.
   */
  async #ask<T>(subject: string, data: Uint8Array, wait: ReplyWait<T>): Promise<T> {
    wait.result.catch(() => undefined);
    const sent = this.#send(subject, data, wait.reply).catch((error: unknown) => {
      wait.cancel();
      throw error;
    });
    sent.catch(() => undefined);
    await Promise.race([sent, wait.result]);
    await sent;
    return wait.result;
  }

  status(): BusStatus {
    return {
      kind: 'postgres',
      connected: this.#listener.connected && !this.#stopping,
      reconnects: this.#listener.reconnects,
      handlerErrors: this.#handlerErrors,
      maxPayload: this.#opts.maxPayloadBytes,
      dropped: this.#reads.dropped,
      closed: this.#stopping,
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
    this.#stopping = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    for (const set of this.#subs.values()) for (const sub of set) sub.active = false;
    this.#subs.clear();
    // Let running handlers finish (and reply, through the pool) first.
    if (this.#inflight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.#inflight]),
        new Promise((resolve) => (timer = setTimeout(resolve, this.#opts.closeGraceMs))),
      ]);
      clearTimeout(timer);
    }
    this.#inbox.close();
    await this.#listener.close();
    await Promise.allSettled([...this.#background]);
    this.#ended = true;
    this.#pool.off('error', this.#onPoolError);
    if (this.#ownsPool) await this.#pool.end().catch(() => undefined);
    this.#emit({ type: 'closed' });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
