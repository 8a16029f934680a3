/**
 * JetStream helpers (setup and publishing; consuming is in `jetstream.consume.ts`) of the NATS adapter: the durable submission path.
 *
 * A client publishes a submission to `baton.<group>.js.submit.<type>` with
 * JetStream (and, ideally, a `Nats-Msg-Id` header: it becomes the task's
 * idempotency key). The stream `BATON_<group>_SUBMIT` keeps it until a node
 * acks it, and a node acks only after its callback resolved, i.e. after the
 * task was committed to PostgreSQL. A crash between commit and ack makes
 * JetStream redeliver, and the idempotency key turns the second commit into
 * a duplicate: at-least-once delivery, exactly-once effect.
 *
 * The stream uses work-queue retention (a message is removed once acked) and
 * one durable pull consumer shared by every node of the group, so each
 * message goes to one node at a time. Only features of nats-server 2.9 are
 * used.
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { BusError } from './errors.js';
import type { NatsBus } from './nats.bus.js';
import { groupSubjects } from './subjects.js';

/** Name of the submission stream of `group`: `BATON_<group>_SUBMIT` (the group keeps its case). */
export function submitStreamName(group: string): string {
  return `BATON_${groupSubjects(group).group}_SUBMIT`;
}

/** Name of the durable consumer the nodes of a group share on its submission stream. */
export const SUBMIT_CONSUMER = 'baton-submit';

/** Header a publisher sets to make JetStream (and Baton) deduplicate. */
export const MSG_ID_HEADER = 'Nats-Msg-Id';

/** Options of {@link ensureSubmitStream}. */
export interface SubmitStreamOptions {
  /**
   * Stream replicas (1 on a single server, 3 on a cluster).
   * @default 1
   */
  readonly replicas?: number;
  /**
   * Window in which JetStream drops a second message with the same
   * `Nats-Msg-Id`, in milliseconds. PostgreSQL's idempotency key covers
   * the rest of time.
   * @default 120000
   */
  readonly duplicateWindowMs?: number;
  /**
   * Age at which an unconsumed submission is dropped, in milliseconds; 0 keeps it forever.
   * @default 0
   */
  readonly maxAgeMs?: number;
  /**
   * Largest message accepted by the stream, in bytes; -1 for the server's limit.
   * @default -1
   */
  readonly maxMsgSize?: number;
  /** @default 'file' */
  readonly storage?: 'file' | 'memory';
}

function apiCode(error: unknown): number | undefined {
  return error instanceof JetStreamApiError ? error.code : undefined;
}

const STREAM_NOT_FOUND = 10059;
const CONSUMER_NOT_FOUND = 10014;

/**
 * The JetStream manager of the bus's connection. Throws {@link BusError}
 * `JETSTREAM_DISABLED` when the server (or the account) has JetStream off,
 * `BUS_FAILURE` on any other failure.
 * @internal
 */
export async function jetStreamManagerOf(bus: NatsBus): Promise<JetStreamManager> {
  try {
    return await jetstreamManager(bus.connection);
  } catch (error) {
    // The client's JetStreamNotEnabled (no responders on the JetStream API,
    // or JetStream off for the account); its package does not export the class.
    if (error instanceof Error && error.name === 'JetStreamNotEnabled') {
      throw new BusError(
        'JETSTREAM_DISABLED',
        'JetStream is not enabled on the NATS server (or for this account)',
        {},
        { cause: error },
      );
    }
    throw new BusError(
      'BUS_FAILURE',
      `JetStream is not available: ${String(error)}`,
      {},
      { cause: error },
    );
  }
}

/**
 * Creates the submission stream of `group`, or updates it to these options.
 * Safe to run from several nodes at once.
 *
 * @returns the stream's name and subjects.
 * @example
 * const { stream } = await ensureSubmitStream(bus, 'orders');
 * await ensureSubmitConsumer(bus, 'orders');
 */
export async function ensureSubmitStream(
  bus: NatsBus,
  group: string,
  options: SubmitStreamOptions = {},
): Promise<{ stream: string; subjects: string[] }> {
  const name = submitStreamName(group);
  const subjects = [groupSubjects(group).jsSubmitAll];
  const config: Partial<StreamConfig> & { name: string } = {
    name,
    subjects,
    retention: RetentionPolicy.Workqueue,
    storage: options.storage === 'memory' ? StorageType.Memory : StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: options.replicas ?? 1,
    duplicate_window: nanos(options.duplicateWindowMs ?? 120_000),
    max_age: nanos(options.maxAgeMs ?? 0),
    max_msg_size: options.maxMsgSize ?? -1,
  };
  const jsm = await jetStreamManagerOf(bus);
  try {
    await jsm.streams.info(name);
    const { name: _name, retention: _retention, storage: _storage, ...mutable } = config;
    await jsm.streams.update(name, mutable);
  } catch (error) {
    if (apiCode(error) !== STREAM_NOT_FOUND)
      throw toJetStreamError(error, `cannot update stream ${name}`);
    try {
      await jsm.streams.add(config);
    } catch (addError) {
      // Another node may have created it in between; then it exists now.
      await jsm.streams.info(name).catch(() => {
        throw toJetStreamError(addError, `cannot create stream ${name}`);
      });
    }
  }
  return { stream: name, subjects };
}

/** Options of {@link ensureSubmitConsumer}. */
export interface SubmitConsumerOptions {
  /** @default 'baton-submit' */
  readonly durable?: string;
  /**
   * How long a delivered message may stay unacked before JetStream
   * redelivers it, in milliseconds. The consumer reports progress while a
   * callback runs, so a slow commit does not cause a redelivery.
   * @default 30000
   */
  readonly ackWaitMs?: number;
  /**
   * Deliveries of one message before JetStream gives up; -1 for no limit.
   * @default -1
   */
  readonly maxDeliver?: number;
  /**
   * Messages delivered and not yet acked, over all nodes.
   * @default 1000
   */
  readonly maxAckPending?: number;
}

/**
 * Creates (or updates) the durable pull consumer of the submission stream.
 * Safe to run from several nodes at once.
 */
export async function ensureSubmitConsumer(
  bus: NatsBus,
  group: string,
  options: SubmitConsumerOptions = {},
): Promise<ConsumerInfo> {
  const stream = submitStreamName(group);
  const durable = options.durable ?? SUBMIT_CONSUMER;
  const config: Partial<ConsumerConfig> = {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(options.ackWaitMs ?? 30_000),
    max_deliver: options.maxDeliver ?? -1,
    max_ack_pending: options.maxAckPending ?? 1000,
  };
  const jsm = await jetStreamManagerOf(bus);
  try {
    await jsm.consumers.info(stream, durable);
    const { durable_name: _d, ack_policy: _a, deliver_policy: _p, ...mutable } = config;
    return await jsm.consumers.update(stream, durable, mutable);
  } catch (error) {
    if (apiCode(error) !== CONSUMER_NOT_FOUND)
      throw toJetStreamError(error, `cannot update consumer ${stream}/${durable}`);
    try {
      return await jsm.consumers.add(stream, config);
    } catch (addError) {
      return await jsm.consumers.info(stream, durable).catch(() => {
        throw toJetStreamError(addError, `cannot create consumer ${stream}/${durable}`);
      });
    }
  }
}

/** @internal */
export function toJetStreamError(error: unknown, message: string): BusError {
  if (error instanceof BusError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new BusError('BUS_FAILURE', `${message}: ${detail}`, {}, { cause: error });
}

/** Result of {@link publishSubmission}. */
export interface StreamAck {
  readonly stream: string;
  readonly seq: number;
  /** True when JetStream already had a message with this `msgId`. */
  readonly duplicate: boolean;
}

/**
 * Publishes to a JetStream subject and waits for the stream's ack. Mostly a
 * convenience for the typed client and the tests: any NATS client can do
 * the same with its own JetStream API.
 */
export async function publishSubmission(
  bus: NatsBus,
  subject: string,
  data: Uint8Array,
  options: { msgId?: string; timeoutMs?: number } = {},
): Promise<StreamAck> {
  try {
    const ack = await jetstream(bus.connection).publish(subject, data, {
      ...(options.msgId !== undefined && { msgID: options.msgId }),
      timeout: options.timeoutMs ?? 5000,
    });
    return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
  } catch (error) {
    throw toJetStreamError(error, `cannot publish to ${subject}`);
  }
}
