/**
 * Submitting tasks over the bus: `baton.<group>.submit.<type>` with a JSON or
 * MessagePack body (see docs/submit.md for the schema). The reply comes only
 * after the task is committed in PostgreSQL. Bad input gets an error reply
 * with a stable code and a message naming the field; without a reply subject
 * it is dropped and counted. Nothing a client sends can crash the node.
 */
import {
  BatonError,
  ENQUEUE_FIELDS,
  InvalidArgumentError,
  type EnqueueInput,
  type EnqueueResult,
} from '@baton/store';
import { decodeSubmission, detectEncoding, encodeAs } from './bus/codec.js';
import type { BusMessage } from './bus/bus.js';

/** The fields a submission body may carry (the type comes from the subject). */
export const SUBMISSION_FIELDS: readonly string[] = [...ENQUEUE_FIELDS].filter((f) => f !== 'type');

/** The reply to a submission. */
export type SubmitReply =
  | { readonly ok: true; readonly id: string; readonly duplicate: boolean }
  | {
      readonly ok: false;
      readonly error: { readonly code: string; readonly message: string; readonly field?: string };
    };

/**
 * Turns a decoded body into an enqueue input, refusing anything that is not
 * a submission field. Field validation proper is the store's.
 */
export function submissionInput(
  type: string,
  body: Record<string, unknown>,
): EnqueueInput<unknown> {
  for (const key of Object.keys(body)) {
    if (key === 'type') {
      throw new InvalidArgumentError(
        'type',
        'comes from the subject (submit.<type>), not the body',
      );
    }
    if (!SUBMISSION_FIELDS.includes(key)) {
      throw new InvalidArgumentError(
        key,
        `is not a known option (known: ${SUBMISSION_FIELDS.join(', ')})`,
      );
    }
  }
  return { ...(body as Omit<EnqueueInput<unknown>, 'type'>), type };
}

/** The code a submitter is told for `error`: a Baton error's own, else INTERNAL. */
export function errorCode(error: unknown): string {
  return error instanceof BatonError ? error.code : 'INTERNAL';
}

/** Describes any error as the error part of a reply; unknown errors are not leaked. */
export function errorReply(error: unknown): SubmitReply {
  if (error instanceof BatonError) {
    const field = typeof error.fields.field === 'string' ? error.fields.field : undefined;
    return {
      ok: false,
      error: { code: error.code, message: error.message, ...(field ? { field } : {}) },
    };
  }
  return {
    ok: false,
    error: { code: 'INTERNAL', message: 'the node could not store the task; retry' },
  };
}

/** A stored submission; `started` when it was stored running on this node (a direct start). */
export type SubmittedResult = EnqueueResult & { readonly started?: boolean };

export interface SubmitHandlerDeps {
  /** The task type a subject names, or null when it names none. */
  readonly typeOf: (subject: string) => string | undefined;
  /** Validates and commits the task; resolves after the commit. */
  readonly enqueue: (input: EnqueueInput<unknown>) => Promise<SubmittedResult>;
  readonly maxBodyBytes: number;
  /** After the commit (and the reply): e.g. publish a wake-up, count it. */
  readonly accepted: (input: EnqueueInput<unknown>, result: SubmittedResult) => void;
  /** A submission refused; `replied` tells whether the client heard of it. */
  readonly rejected: (error: unknown, replied: boolean, subject: string) => void;
}

/**
 * Decodes, validates and stores one submission; replies in the submitter's
 * encoding, read from the body's first byte before anything else, so that
 * every error reply (a body too large or not a map included) uses it too.
 */
export async function handleSubmission(
  message: BusMessage,
  deps: SubmitHandlerDeps,
): Promise<void> {
  const encoding = detectEncoding(message.data);
  let reply: SubmitReply;
  let input: EnqueueInput<unknown> | undefined;
  let result: SubmittedResult | undefined;
  try {
    const type = deps.typeOf(message.subject);
    if (type === undefined)
      throw new InvalidArgumentError('subject', `${message.subject} names no task type`);
    const decoded = decodeSubmission(message.data, { maxBytes: deps.maxBodyBytes });
    input = submissionInput(type, decoded.value);
    result = await deps.enqueue(input);
    reply = { ok: true, id: result.id, duplicate: result.duplicate };
  } catch (error) {
    reply = errorReply(error);
    deps.rejected(error, message.reply !== undefined, message.subject);
  }
  if (message.reply !== undefined) await message.respond(encodeAs(encoding, reply));
  if (input && result) deps.accepted(input, result);
}
