/**
 * Opens the bus the config picks (NATS when a NATS URL is given, otherwise
 * PostgreSQL LISTEN/NOTIFY), and the JetStream submission intake on NATS.
 */
import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { MAX_IDEMPOTENCY_KEY_LENGTH, unstorableText } from '@baton/store';
import type { SubmitHandlerDeps } from './submit.js';
import type { Bus } from './bus/bus.js';
import { decodeSubmission } from './bus/codec.js';
import { BusError } from './bus/errors.js';
import {
  consumeStream,
  isPermanentSubmissionError,
  type StreamDelivery,
} from './bus/jetstream.consume.js';
import {
  ensureSubmitConsumer,
  ensureSubmitStream,
  SUBMIT_CONSUMER,
  submitStreamName,
} from './bus/jetstream.js';
import { createNatsBus, NatsBus } from './bus/nats.bus.js';
import { createPostgresBus } from './bus/postgres.bus.js';
import { groupSubjects } from './bus/subjects.js';
import type { CompiledConfig } from './config.js';
import type { Logger } from './observability/index.js';
import { tlsFor } from './pg-config.js';
import type { SubmitStreamState } from './status.js';
import { submissionInput } from './submit.js';

export async function openBus(config: CompiledConfig, pool: Pool): Promise<Bus> {
  if (config.nats) {
    const { servers, user, pass, token, tls } = config.nats;
    return createNatsBus({
      servers: [...servers],
      name: `baton:${config.groupId}:${config.nodeId}`,
      ...(user ? { user } : {}),
      ...(pass ? { pass } : {}),
      ...(token ? { token } : {}),
      ...(tls ? { tls: tlsFor('nats.tls', tls) } : {}),
    });
  }
  return createPostgresBus({
    pool,
    schema: config.database.schema,
    applicationName: `baton-bus:${config.nodeId}`.slice(0, 63),
  });
}

export interface StreamIntake {
  /** `active` when the node consumes the stream, else why it does not. */
  readonly state: Exclude<SubmitStreamState, 'pending'>;
  stop(): Promise<void>;
}

const without = (state: 'unavailable' | 'off' | 'none'): StreamIntake => ({
  state,
  stop: async () => {},
});

type IntakeDeps = Omit<SubmitHandlerDeps, 'typeOf'>;

/**
 * The idempotency key of a stream message published with `Nats-Msg-Id`: the
 * id itself, or, when the store could not take it (longer than a key may be,
 * or holding text PostgreSQL refuses), a digest of it. JetStream has acked
 * such a message already: refusing its id would lose it.
 */
export function messageIdKey(msgId: string): string {
  if (msgId.length <= MAX_IDEMPOTENCY_KEY_LENGTH && unstorableText(msgId) === undefined) {
    return msgId;
  }
  return `js:msgid:sha256:${createHash('sha256').update(msgId).digest('hex')}`;
}

/**
 * The idempotency key of a stream message published without `Nats-Msg-Id`:
 * its sequence and its store time, the same on every redelivery. The
 * sequence alone would make a new message look like an old task's
 * duplicate once the stream's sequences start over.
 */
export function streamMessageKey(
  stream: string,
  delivery: Pick<StreamDelivery, 'streamSequence' | 'storedAtNanos'>,
): string {
  return `js:${stream}:${delivery.streamSequence}:${delivery.storedAtNanos}`;
}

/**
 * On NATS, submissions published to the group's JetStream stream
 * (`baton.<group>.js.submit.<type>`) are acked only after the task is
 * committed. The idempotency key is the body's, else the message id, else
 * {@link streamMessageKey}: a redelivery after a lost ack never makes a
 * second task. A stream or consumer deleted under the node is created again.
 *
 * The stream is an extra way in: request/reply and plain publish need core
 * NATS only. `nats.jetstream` decides: `false` never creates it; `'auto'`
 * goes without it (and warns) when the server has JetStream disabled; `true`
 * then fails the start.
 */
export async function startStreamIntake(
  bus: Bus,
  config: CompiledConfig,
  deps: IntakeDeps,
  logger: Logger,
): Promise<StreamIntake> {
  if (!(bus instanceof NatsBus) || !config.nats) return without('none');
  const wanted = config.nats.jetstream;
  if (wanted === false) return without('off');
  const stream = submitStreamName(config.groupId);
  const ensure = async () => {
    await ensureSubmitStream(bus, config.groupId);
    await ensureSubmitConsumer(bus, config.groupId);
  };
  try {
    await ensure();
  } catch (error) {
    if (!(error instanceof BusError) || error.code !== 'JETSTREAM_DISABLED') throw error;
    if (wanted === true) {
      throw new BusError(
        'JETSTREAM_DISABLED',
        "nats.jetstream (BATON_NATS_JETSTREAM) is true, but the NATS server has JetStream disabled: enable JetStream on the server (nats-server -js, or a jetstream block in its configuration), or set nats.jetstream to 'auto' to start without the JetStream submission stream",
        { option: 'nats.jetstream' },
        { cause: error },
      );
    }
    logger.warn(
      { option: 'nats.jetstream', stream },
      'JetStream submission stream off: the NATS server has JetStream disabled. Request/reply and plain publish submissions work. To use the stream, enable JetStream on the server (nats-server -js, or a jetstream block in its configuration) and restart this node; nats.jetstream (BATON_NATS_JETSTREAM) false goes without it quietly, true requires it',
    );
    return without('unavailable');
  }
  const subjects = groupSubjects(config.groupId);
  const consumer = await consumeStream(
    bus,
    stream,
    SUBMIT_CONSUMER,
    async (delivery) => {
      const type = subjects.typeOf(delivery.subject);
      try {
        if (type === undefined) throw new Error(`${delivery.subject} names no task type`);
        const { value } = decodeSubmission(delivery.data, { maxBytes: deps.maxBodyBytes });
        const input = submissionInput(type, value);
        const keyed =
          input.idempotencyKey !== undefined
            ? input
            : {
                ...input,
                idempotencyKey:
                  delivery.msgId === undefined
                    ? streamMessageKey(stream, delivery)
                    : messageIdKey(delivery.msgId),
              };
        const result = await deps.enqueue(keyed);
        deps.accepted(keyed, result);
      } catch (error) {
        // Terminated (bad input) is refused for good; anything else is nak'ed
        // and stored on a redelivery, so it is not a refusal.
        if (isPermanentSubmissionError(error)) deps.rejected(error, false, delivery.subject);
        throw error;
      }
    },
    {
      concurrency: 16,
      restore: ensure,
      // A refusal was logged by `rejected`; a transient failure is said here, once per delivery.
      onError: (error, delivery) => {
        if (delivery && isPermanentSubmissionError(error)) return;
        logger.warn(
          { err: error, subject: delivery?.subject },
          delivery
            ? 'stream submission not stored yet; JetStream delivers it again'
            : 'submission stream consumer problem',
        );
      },
    },
  );
  return { state: 'active', stop: () => consumer.stop() };
}
