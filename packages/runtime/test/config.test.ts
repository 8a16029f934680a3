import { describe, expect, it } from 'vitest';
import { compileConfig, ConfigError, createNode, type NodeOptions } from '../src/index.js';

const base: NodeOptions = { database: { url: 'postgres://127.0.0.1:5432/none' }, http: false };

/** The option a createNode call refuses, by its ConfigError. */
function refused(options: Partial<NodeOptions>): string | undefined {
  try {
    createNode({ ...base, ...options });
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ code: 'INVALID_CONFIG' });
    return (error as ConfigError).fields.option as string;
  }
}

describe('TLS to PostgreSQL', () => {
  it('is given in one place: ssl beside an sslmode in the URL is refused (pg would let the URL win)', () => {
    const url = 'postgres://u@db.example:5432/app?sslmode=disable';
    expect(refused({ database: { url, ssl: true } })).toBe('database.ssl');
    expect(refused({ database: { url } })).toBeUndefined();
    expect(
      refused({ database: { url: 'postgres://u@db.example/app', ssl: true } }),
    ).toBeUndefined();
  });
});

describe('durations in the node options', () => {
  it('are refused, naming the option, above what a timer takes (the actors would crash on them)', () => {
    expect(refused({ worker: { timeoutMs: 3_000_000_000 } })).toBe('worker.timeoutMs');
    expect(refused({ worker: { leaseMs: 2 ** 31 } })).toBe('worker.leaseMs');
    expect(refused({ shutdownGraceMs: 2 ** 31 })).toBe('shutdownGraceMs');
    expect(refused({ worker: { timeoutMs: 2 ** 31 - 1 } })).toBeUndefined();
  });

  it('in seconds are refused below a millisecond (they would round to 0) and above a timer', () => {
    expect(refused({ warmBackup: { heartbeatFrequency: 0.0001 } })).toBe(
      'warmBackup.heartbeatFrequency',
    );
    expect(refused({ warmBackup: { heartbeatFrequency: 1, livenessCheckInterval: 3e6 } })).toBe(
      'warmBackup.livenessCheckInterval',
    );
  });
});

describe('retention', () => {
  it('defaults to a day for completed tasks, a week for cancelled ones, 30 days for dead letters', () => {
    expect(compileConfig(base).retention).toEqual({
      completedMs: 86_400_000,
      cancelledMs: 604_800_000,
      deadLetterMs: 2_592_000_000,
      intervalMs: 60_000,
    });
    expect(
      compileConfig({ ...base, retention: { completed: null, deadLetter: 90 * 86_400 } }).retention,
    ).toMatchObject({ completedMs: null, deadLetterMs: 7_776_000_000 });
  });

  it('refuses what is not a number of seconds or null, naming the option', () => {
    expect(refused({ retention: { completed: -1 } })).toBe('retention.completed');
    expect(refused({ retention: { cancelled: '7d' as unknown as number } })).toBe(
      'retention.cancelled',
    );
    expect(refused({ retention: { deadLetter: Number.NaN } })).toBe('retention.deadLetter');
    expect(refused({ retention: { interval: 0 } })).toBe('retention.interval');
  });
});

describe('the JetStream submission stream', () => {
  const nats = { servers: 'nats://127.0.0.1:4222' };

  it("is 'auto' by default; true and false are kept", () => {
    expect(compileConfig({ ...base, nats }).nats?.jetstream).toBe('auto');
    expect(compileConfig({ ...base, nats: { ...nats, jetstream: true } }).nats?.jetstream).toBe(
      true,
    );
    expect(compileConfig({ ...base, nats: { ...nats, jetstream: false } }).nats?.jetstream).toBe(
      false,
    );
  });

  it("refuses anything but 'auto', true or false, naming nats.jetstream", () => {
    expect(refused({ nats: { ...nats, jetstream: 'yes' as unknown as boolean } })).toBe(
      'nats.jetstream',
    );
  });
});
