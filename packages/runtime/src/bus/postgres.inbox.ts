/**
 * Replies of the PostgreSQL bus: one inbox root per bus (`_INBOX.<random>`,
 * its own channel), one reply subject per request (`_INBOX.<random>.<n>`),
 * and the waits for one reply (`request`) or many (`requestMany`).
 */
import { randomBytes } from 'node:crypto';
import { BatonError, InvalidArgumentError } from '@baton/store';
import { BusError } from './errors.js';

/** Maps a failure of the pool or the database to a typed error of the bus. */
export function toBusError(error: unknown, subject: string, closed = false): Error {
  if (error instanceof BatonError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (closed || /after calling end on the pool/.test(message)) {
    return new BusError('CLOSED', `the bus is closed (${subject})`, { subject }, { cause: error });
  }
  return new BusError('BUS_FAILURE', `${subject}: ${message}`, { subject }, { cause: error });
}

/** A reply wait: the reply subject to send with the request, and the outcome. */
export interface ReplyWait<T> {
  readonly reply: string;
  readonly result: Promise<T>;
  /** Forgets the wait (the request could not be sent); `result` never settles. */
  cancel(): void;
}

interface Waiter {
  deliver(data: Uint8Array): void;
  close(): void;
}

function duration(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(field, 'must be a non-negative number of milliseconds', value);
  }
  return value;
}

/** The reply inbox of one bus. */
export class ReplyInbox {
  /** `_INBOX.<random>`: the root of every reply subject of this bus. */
  readonly root = `_INBOX.${randomBytes(9).toString('base64url').replaceAll('-', 'x')}`;
  readonly #prefix = `${this.root}.`;
  readonly #waiters = new Map<string, Waiter>();
  #next = 0;
  #closed = false;

  /** True when `subject` is a reply this inbox still waits for. */
  wants(subject: string): boolean {
    return this.#waiters.has(subject);
  }

  deliver(subject: string, data: Uint8Array): void {
    this.#waiters.get(subject)?.deliver(data);
  }

  /** Waits for the first reply; rejects with `TIMEOUT` after `timeoutMs`, `CLOSED` on close. */
  one(subject: string, timeoutMs: number): ReplyWait<Uint8Array> {
    const ms = duration('timeoutMs', timeoutMs);
    const reply = this.#newReply(subject);
    let cancel!: () => void;
    const result = new Promise<Uint8Array>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(reply);
      };
      const timer = setTimeout(() => {
        done();
        reject(new BusError('TIMEOUT', `no reply on ${subject} in time`, { subject, timeoutMs }));
      }, ms);
      cancel = done;
      this.#waiters.set(reply, {
        deliver: (data) => {
          done();
          resolve(data);
        },
        close: () => {
          done();
          reject(new BusError('CLOSED', `the bus is closed (${subject})`, { subject }));
        },
      });
    });
    return { reply, result, cancel };
  }

  /** Gathers replies until `expected` arrived or `maxWaitMs` elapsed (or close); never rejects. */
  many(maxWaitMs: number, expected: number | undefined): ReplyWait<Uint8Array[]> {
    const ms = duration('maxWaitMs', maxWaitMs);
    const reply = this.#newReply('requestMany');
    const replies: Uint8Array[] = [];
    let cancel!: () => void;
    const result = new Promise<Uint8Array[]>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(reply);
      };
      const finish = (): void => {
        done();
        resolve(replies);
      };
      const timer = setTimeout(finish, ms);
      cancel = done;
      this.#waiters.set(reply, {
        deliver: (data) => {
          replies.push(data);
          if (expected !== undefined && replies.length >= expected) finish();
        },
        close: finish,
      });
    });
    return { reply, result, cancel };
  }

  /** Ends every wait: `request`s reject with `CLOSED`, `requestMany`s resolve with what arrived. */
  close(): void {
    this.#closed = true;
    for (const waiter of [...this.#waiters.values()]) waiter.close();
  }

  #newReply(subject: string): string {
    if (this.#closed) throw new BusError('CLOSED', `the bus is closed (${subject})`, { subject });
    this.#next += 1;
    return `${this.#prefix}${this.#next}`;
  }
}
