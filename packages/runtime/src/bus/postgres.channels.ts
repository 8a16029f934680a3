/**
 * Subjects and channels of the PostgreSQL bus.
 *
 * A subject's **root** is its first two tokens (`baton.<group>`), or its only
 * token. Every subject with the same root goes to one NOTIFY channel,
 * `<prefix>_<hash of the root>_<readable part of the root>`, at most 63 bytes:
 * a node LISTENs to its group's channel and to its own reply inbox, never
 * to other groups' traffic, and filters subjects (with NATS wildcards) in
 * process. Two roots may share a channel (a hash collision, or a long root
 * cut short); the in-process filter keeps that harmless.
 *
 * Subjects follow NATS: dot-separated non-empty tokens without whitespace;
 * a subscription may use `*` for one token and `>` as the last token for one
 * or more. On this bus, the root of a subscription must be literal
 * (`baton.*.hb` cannot name a channel) and subjects are at most
 * {@link MAX_SUBJECT_LENGTH} characters.
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError, MAX_CHANNEL_BYTES, validateChannel } from '@baton/store';

/** Longest subject (and reply subject) this bus carries, in characters. */
export const MAX_SUBJECT_LENGTH = 512;
/** Longest queue group name, in characters. */
export const MAX_QUEUE_LENGTH = 128;

const ROOT_TOKENS = 2;
const HASH_CHARS = 12;
// Whitespace, and control characters (C0 and DEL) spelled as a Unicode category.
const BAD_CHARS = /[\s\p{Cc}]/u;

/** A subject split into tokens, with its root. */
export interface ParsedSubject {
  readonly subject: string;
  readonly tokens: readonly string[];
  readonly root: string;
}

function parse(subject: unknown, field: string): ParsedSubject {
  if (typeof subject !== 'string' || subject.length === 0) {
    throw new InvalidArgumentError(field, 'must be a non-empty string', subject);
  }
  if (subject.length > MAX_SUBJECT_LENGTH) {
    throw new InvalidArgumentError(
      field,
      `must be at most ${MAX_SUBJECT_LENGTH} characters on the PostgreSQL bus`,
      subject,
    );
  }
  if (BAD_CHARS.test(subject)) {
    throw new InvalidArgumentError(
      field,
      'must not contain whitespace or control characters',
      subject,
    );
  }
  const tokens = subject.split('.');
  if (tokens.some((t) => t.length === 0)) {
    throw new InvalidArgumentError(field, 'must be dot-separated non-empty tokens', subject);
  }
  return { subject, tokens, root: tokens.slice(0, ROOT_TOKENS).join('.') };
}

/**
 * Validates a subject to publish (or reply) to: no wildcard tokens. Throws
 * {@link InvalidArgumentError} naming `field`.
 */
export function parsePublishSubject(subject: unknown, field = 'subject'): ParsedSubject {
  const parsed = parse(subject, field);
  if (parsed.tokens.some((t) => t === '*' || t === '>')) {
    throw new InvalidArgumentError(
      field,
      'must not contain the wildcards * or > to publish',
      subject,
    );
  }
  return parsed;
}

/**
 * Validates a subscription subject: `*` tokens anywhere after the root, `>`
 * only last, the root (first two tokens) literal. Throws
 * {@link InvalidArgumentError} naming `field`.
 */
export function parseSubscribeSubject(subject: unknown, field = 'subject'): ParsedSubject {
  const parsed = parse(subject, field);
  const { tokens } = parsed;
  const last = tokens.length - 1;
  if (tokens.some((t, i) => t === '>' && i !== last)) {
    throw new InvalidArgumentError(field, 'may use > only as its last token', subject);
  }
  const rootTokens = tokens.slice(0, ROOT_TOKENS);
  if (rootTokens.some((t) => t === '*' || t === '>')) {
    throw new InvalidArgumentError(
      field,
      'must start with two literal tokens on the PostgreSQL bus (e.g. baton.<group>.hb.*): they pick the channel',
      subject,
    );
  }
  return parsed;
}

/** Validates a queue group name: 1 to 128 characters, no whitespace. */
export function validateQueueGroup(queue: unknown, field = 'queue'): string {
  if (typeof queue !== 'string' || queue.length === 0 || queue.length > MAX_QUEUE_LENGTH) {
    throw new InvalidArgumentError(field, `must be 1 to ${MAX_QUEUE_LENGTH} characters`, queue);
  }
  if (BAD_CHARS.test(queue)) {
    throw new InvalidArgumentError(
      field,
      'must not contain whitespace or control characters',
      queue,
    );
  }
  return queue;
}

/** True when `subject` (concrete tokens) matches `pattern` (tokens with `*` and `>`). */
export function subjectMatches(pattern: readonly string[], subject: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === '>') return subject.length > i;
    if (i >= subject.length) return false;
    if (p !== '*' && p !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}

/**
 * The channel of each root under one prefix, memoised.
 *
 * @example
 * const channels = new ChannelNames('baton_bus');
 * channels.of('baton.orders'); // 'baton_bus_3fa9c1d2e4b5_baton_orders'
 */
export class ChannelNames {
  readonly #prefix: string;
  readonly #cache = new Map<string, string>();

  constructor(prefix: string) {
    this.#prefix = validateChannel(prefix, 'channelPrefix');
  }

  of(root: string): string {
    let channel = this.#cache.get(root);
    if (channel === undefined) {
      const hash = createHash('sha256').update(root).digest('hex').slice(0, HASH_CHARS);
      const readable = root
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '_')
        .replace(/^_+|_+$/g, '');
      const full =
        readable.length > 0 ? `${this.#prefix}_${hash}_${readable}` : `${this.#prefix}_${hash}`;
      channel = validateChannel(full.slice(0, MAX_CHANNEL_BYTES).replace(/_+$/, ''));
      if (this.#cache.size > 10_000) this.#cache.clear();
      this.#cache.set(root, channel);
    }
    return channel;
  }
}
