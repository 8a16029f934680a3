/**
 * Consuming the submission stream: ack only after the callback (the commit
 * to PostgreSQL) resolved; nak to redeliver on a passing failure; term on a
 * permanent one. See `jetstream.ts` for the stream and the consumer.
 */
import { jetstream, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { BatonError, isDataException } from '@baton/store';
import { BusError } from './errors.js';
import { jetStreamManagerOf, MSG_ID_HEADER, toJetStreamError } from './jetstream.js';
import type { NatsBus } from './nats.bus.js';

/** One message handed to a {@link StreamCallback}. */
export interface StreamDelivery {
  readonly subject: string;
  readonly data: Uint8Array;
  /** The publisher's `Nats-Msg-Id`, if any: use it as the idempotency key. */
  readonly msgId?: string;
  /** 1 on the first delivery, then 2, 3, ... */
  readonly deliveryCount: number;
  /** Sequence of the message in the stream. */
  readonly streamSequence: number;
  /**
   * When the stream stored the message (nanoseconds since the epoch, in
   * decimal). With the sequence it names the message for good: a sequence
   * alone is reused when the stream is created again, or when nats-server
   * crashed before writing messages it had acknowledged.
   */
  readonly storedAtNanos: string;
}

/** Commits one delivery; the message is acked only once the promise resolves. */
export type StreamCallback = (delivery: StreamDelivery) => Promise<void>;

/** Options of {@link consumeStream}. */
export interface ConsumeStreamOptions {
  /**
   * Callbacks running at once.
   * @default 1
   */
  readonly concurrency?: number;
  /**
   * Delay before JetStream redelivers a message whose callback failed, in milliseconds.
   * @default 1000
   */
  readonly nakDelayMs?: number;
  /**
   * Whether a callback's error is permanent: the message is then terminated
   * (never redelivered, and removed from the stream) instead of nak'ed. By default, Baton errors with
   * code `BAD_ENCODING`, `INVALID_ARGUMENT` or `PAYLOAD_TOO_LARGE` are
   * permanent: a retry cannot fix a bad message.
   */
  readonly isPermanent?: (error: unknown) => boolean;
  /** Called with each callback failure and consumer problem (never throws into the loop). */
  readonly onError?: (error: unknown, delivery?: StreamDelivery) => void;
  /**
   * Creates the stream and the consumer again. When set, a consumer the
   * server reports gone (deleted, or its stream deleted) makes the loop call
   * it and resume on the new consumer; without it, the loop waits for
   * someone else to create them.
   */
  readonly restore?: () => Promise<void>;
}

/** A running consumer loop. */
export interface StreamConsumer {
  /** Messages acked, nak'ed and terminated so far. */
  counts(): { acked: number; naked: number; terminated: number };
  /**
   * Stops pulling and waits for running callbacks to finish (and ack).
   * Messages pulled but not started are redelivered after `ackWaitMs`.
   */
  stop(): Promise<void>;
}

/** How long one pull request lives before the consumer renews it. */
const PULL_EXPIRES_MS = 5000;

const PERMANENT_CODES = new Set(['BAD_ENCODING', 'INVALID_ARGUMENT', 'PAYLOAD_TOO_LARGE']);

/**
 * The default of {@link ConsumeStreamOptions.isPermanent}: bad input, and a
 * PostgreSQL data exception (SQLSTATE class 22: a value the database refuses
 * will be refused on every redelivery too).
 */
export function isPermanentSubmissionError(error: unknown): boolean {
  if (error instanceof BatonError) return PERMANENT_CODES.has(error.code);
  return isDataException(error);
}

/**
 * Consumes the durable pull consumer `durable` of `stream` (see
 * {@link ensureSubmitConsumer}), calling `callback` for each message: ack
 * after it resolves; term when it rejects with a permanent error; nak
 * (redeliver after `nakDelayMs`) on any other error. While a callback
 * runs, the message's ack deadline is extended. The loop survives server
 * restarts and reconnects.
 */
export async function consumeStream(
  bus: NatsBus,
  stream: string,
  durable: string,
  callback: StreamCallback,
  options: ConsumeStreamOptions = {},
): Promise<StreamConsumer> {
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new BusError('BUS_FAILURE', 'concurrency must be a positive integer', { concurrency });
  }
  const nakDelayMs = options.nakDelayMs ?? 1000;
  const isPermanent = options.isPermanent ?? isPermanentSubmissionError;
  const onError = options.onError ?? (() => {});
  const bind = async () => {
    try {
      return await jetstream(bus.connection).consumers.get(stream, durable);
    } catch (error) {
      throw toJetStreamError(error, `cannot bind to consumer ${stream}/${durable}`);
    }
  };
  let consumer = await bind();
  const info = await consumer.info(true);
  const jsm = await jetStreamManagerOf(bus);
  const workingEveryMs = Math.max(
    100,
    Math.floor((info.config.ack_wait ?? nanos(30_000)) / 1_000_000 / 2),
  );
  const pull = () =>
    consumer.consume({
      max_messages: Math.max(2, concurrency * 2),
      // Short pulls with frequent idle heartbeats: a pull the server lost (a
      // restart) is noticed and renewed within seconds, not the 30 s default.
      expires: PULL_EXPIRES_MS,
      idle_heartbeat: PULL_EXPIRES_MS / 5,
    });
  let messages: ConsumerMessages = await pull();
  let stopped = false;
  /** The server said the consumer is gone: restore it before resuming. */
  let missing = false;
  const counts = { acked: 0, naked: 0, terminated: 0 };
  const running = new Set<Promise<void>>();
  const handle = async (msg: JsMsg): Promise<void> => {
    const msgId = msg.headers?.get(MSG_ID_HEADER);
    const delivery: StreamDelivery = {
      subject: msg.subject,
      data: msg.data,
      ...(msgId !== undefined && msgId.length > 0 && { msgId }),
      deliveryCount: msg.info.deliveryCount,
      streamSequence: msg.info.streamSequence,
      storedAtNanos: msg.timestampNanos.toString(),
    };
    const working = setInterval(() => msg.working(), workingEveryMs);
    try {
      await callback(delivery);
      msg.ack();
      counts.acked += 1;
    } catch (error) {
      onError(error, delivery);
      if (isPermanent(error)) {
        msg.term(error instanceof Error ? error.message : 'permanent failure');
        counts.terminated += 1;
        // nats-server 2.9 keeps a terminated message in a work-queue stream
        // until max_age: remove it, so poison messages do not pile up.
        await jsm.streams
          .deleteMessage(stream, delivery.streamSequence, false)
          .catch((e: unknown) => onError(e, delivery));
      } else {
        msg.nak(nakDelayMs);
        counts.naked += 1;
      }
    } finally {
      clearInterval(working);
    }
  };

  const drain = async (current: ConsumerMessages): Promise<void> => {
    for await (const msg of current) {
      while (running.size >= concurrency) await Promise.race(running);
      const task = handle(msg).catch((error: unknown) => onError(error));
      running.add(task);
      void task.finally(() => running.delete(task));
    }
  };
  const watch = async (current: ConsumerMessages): Promise<void> => {
    for await (const notice of current.status()) {
      if (
        notice.type === 'consumer_deleted' ||
        notice.type === 'consumer_not_found' ||
        notice.type === 'stream_not_found'
      ) {
        onError(
          new BusError('BUS_FAILURE', `JetStream consumer ${stream}/${durable}: ${notice.type}`, {
            stream,
            durable,
          }),
        );
        if (options.restore && !missing) {
          missing = true;
          current.close().catch((error: unknown) => onError(error));
        }
      }
    }
  };
  // The pull loop never ends on its own: if the client's iterator stops (a
  // server restart it could not ride out), consuming starts over, bound to
  // the same durable consumer, until stop().
  const loop = (async () => {
    for (let attempt = 0; ; attempt++) {
      const current = messages;
      const notices = watch(current).catch((error: unknown) => onError(error));
      await drain(current).catch((error: unknown) => onError(error));
      await notices;
      if (stopped) return;
      onError(
        new BusError('BUS_FAILURE', `JetStream consumer ${stream}/${durable} stopped; resuming`, {
          stream,
          durable,
        }),
      );
      for (;;) {
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** Math.min(attempt, 5), 2000)));
        if (stopped) return;
        try {
          if (missing && options.restore) {
            await options.restore();
            consumer = await bind();
            missing = false;
          }
          messages = await pull();
          break;
        } catch (error) {
          onError(error);
        }
      }
      if (stopped) {
        await messages.close();
        return;
      }
    }
  })();

  let stopping: Promise<void> | undefined;
  return {
    counts: () => ({ ...counts }),
    stop: () => {
      stopping ??= (async () => {
        stopped = true;
        await messages.close();
        await loop;
        await Promise.allSettled([...running]);
      })();
      return stopping;
    },
  };
}
