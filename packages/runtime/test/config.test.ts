import { describe, expect, it } from 'vitest';
import { ConfigError, createNode, type NodeOptions } from '../src/index.js';

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
