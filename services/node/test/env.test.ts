import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { envTable } from '../src/env-docs.js';
import { EnvError, optionsFromEnv, unknownVariables } from '../src/env.js';

describe('the node environment', () => {
  it('docs/configuration.md shows exactly the table of env.ts (regenerate with pnpm docs:env)', () => {
    const page = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
    expect(page).toContain(envTable());
  });

  it('maps variables to node options, with Ballerina names for the warm-backup settings', () => {
    const { options, handlerModules } = optionsFromEnv({
      DATABASE_URL: 'postgres://u:p@db:5432/x',
      NATS_URL: 'nats://a:4222, nats://b:4222',
      BATON_NODE_ID: 'n1',
      BATON_GROUP: 'orders',
      BATON_HANDLERS: './a.js,./b.js',
      BATON_CONCURRENCY: '8',
      BATON_QUEUE: 'emails',
      BATON_HEARTBEAT_FREQUENCY: '0.2',
      BATON_LIVENESS_CHECK_INTERVAL: '1.5',
      BATON_DB_SSL: 'no-verify',
    });
    expect(handlerModules).toEqual(['./a.js', './b.js']);
    expect(options).toMatchObject({
      nodeId: 'n1',
      groupId: 'orders',
      nats: { servers: ['nats://a:4222', 'nats://b:4222'] },
      worker: { concurrency: 8, queue: 'emails' },
      warmBackup: { heartbeatFrequency: 0.2, livenessCheckInterval: 1.5 },
      database: { url: 'postgres://u:p@db:5432/x', ssl: { rejectUnauthorized: false } },
    });
  });

  it('maps the retention variables: seconds, or forever', () => {
    const { options } = optionsFromEnv({
      DATABASE_URL: 'postgres://x',
      BATON_RETENTION_COMPLETED: '3600',
      BATON_RETENTION_DEAD_LETTER: 'forever',
      BATON_RETENTION_INTERVAL: '0.5',
    });
    expect(options.retention).toEqual({ completed: 3600, deadLetter: null, interval: 0.5 });
    expect(optionsFromEnv({ DATABASE_URL: 'postgres://x' }).options.retention).toEqual({});
    expect(() =>
      optionsFromEnv({ DATABASE_URL: 'postgres://x', BATON_RETENTION_CANCELLED: '7d' }),
    ).toThrow(/BATON_RETENTION_CANCELLED: must be a number of seconds or "forever", got "7d"/);
  });

  it('maps BATON_NATS_JETSTREAM to nats.jetstream: auto, true or false', () => {
    const nats = (value?: string) =>
      optionsFromEnv({
        DATABASE_URL: 'postgres://x',
        NATS_URL: 'nats://a:4222',
        ...(value === undefined ? {} : { BATON_NATS_JETSTREAM: value }),
      }).options.nats;
    expect(nats()).not.toHaveProperty('jetstream');
    expect(nats('auto')).toMatchObject({ jetstream: 'auto' });
    expect(nats('true')).toMatchObject({ jetstream: true });
    expect(nats('false')).toMatchObject({ jetstream: false });
    expect(() => nats('required')).toThrow(
      /BATON_NATS_JETSTREAM: must be auto, true or false, got "required"/,
    );
  });

  it('bad values are refused naming the variable; unknown BATON_ variables are reported', () => {
    expect(() => optionsFromEnv({})).toThrow(EnvError);
    expect(() => optionsFromEnv({})).toThrow(/DATABASE_URL/);
    expect(() =>
      optionsFromEnv({ DATABASE_URL: 'postgres://x', BATON_CONCURRENCY: 'lots' }),
    ).toThrow(/BATON_CONCURRENCY/);
    expect(() =>
      optionsFromEnv({
        DATABASE_URL: 'postgres://x',
        BATON_DB_SSL: 'false',
        BATON_DB_SSL_CA_FILE: '/ca.pem',
      }),
    ).toThrow(/BATON_DB_SSL/);
    expect(() => optionsFromEnv({ DATABASE_URL: 'postgres://x', BATON_DB_SSL: 'maybe' })).toThrow(
      /BATON_DB_SSL/,
    );
    expect(unknownVariables({ BATON_CONCURENCY: '3', BATON_GROUP: 'g', HOME: '/' })).toEqual([
      'BATON_CONCURENCY',
    ]);
  });
});
