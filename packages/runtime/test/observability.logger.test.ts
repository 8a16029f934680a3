import { describe, expect, it } from 'vitest';
import { createLogger, parseLogLevel, taskLogger } from '../src/observability/logger.js';
import { ObservabilityConfigError } from '../src/observability/errors.js';

/** A destination that keeps every line, parsed. */
function collect(): { lines: Record<string, unknown>[]; write: (line: string) => void } {
  const lines: Record<string, unknown>[] = [];
  return { lines, write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) };
}

describe('createLogger', () => {
  it('writes JSON lines with node, group, a level word and an ISO time', () => {
    const out = collect();
    const log = createLogger({ level: 'info', nodeId: 'n1', groupId: 'orders', destination: out });
    log.info({ queue: 'mail' }, 'worker started');
    expect(out.lines).toHaveLength(1);
    const [line] = out.lines;
    expect(line).toMatchObject({
      level: 'info',
      node: 'n1',
      group: 'orders',
      queue: 'mail',
      msg: 'worker started',
      pid: process.pid,
    });
    expect(new Date(line?.time as string).toISOString()).toBe(line?.time);
  });

  it('gives task loggers the task, attempt and type ids on top of node and group', () => {
    const out = collect();
    const log = createLogger({ nodeId: 'n1', groupId: 'orders', destination: out });
    const child = taskLogger(log, { id: '42', attempt: 3, type: 'email' });
    child.warn('slow handler');
    taskLogger(log, { id: '43', attempt: 1 }).info('done');
    expect(out.lines[0]).toMatchObject({
      level: 'warn',
      node: 'n1',
      group: 'orders',
      task: '42',
      attempt: 3,
      type: 'email',
      msg: 'slow handler',
    });
    expect(out.lines[1]).toMatchObject({ task: '43', attempt: 1 });
    expect(out.lines[1]).not.toHaveProperty('type');
  });

  it('filters by level (info by default) and stays quiet when silent', () => {
    const out = collect();
    createLogger({ nodeId: 'n1', groupId: 'g', destination: out }).debug('hidden');
    createLogger({ level: 'warn', nodeId: 'n1', groupId: 'g', destination: out }).info('hidden');
    createLogger({ level: 'silent', nodeId: 'n1', groupId: 'g', destination: out }).fatal('hidden');
    createLogger({ level: 'debug', nodeId: 'n1', groupId: 'g', destination: out }).debug('shown');
    expect(out.lines.map((l) => l.msg)).toEqual(['shown']);
  });

  it('serialises errors with their code and redacts credentials', () => {
    const out = collect();
    const log = createLogger({ nodeId: 'n1', groupId: 'g', destination: out });
    const err = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    log.error({ err, config: { database: { host: 'db', password: 'hunter2' } } }, 'cannot connect');
    expect(out.lines[0]).toMatchObject({
      err: { type: 'Error', message: 'refused', code: 'ECONNREFUSED' },
      config: { database: { host: 'db', password: '[redacted]' } },
    });
  });

  it('rejects an invalid level with a typed error naming log.level', () => {
    const attempt = () => createLogger({ level: 'verbose', nodeId: 'n1', groupId: 'g' });
    expect(attempt).toThrow(ObservabilityConfigError);
    expect(attempt).toThrow(
      /^log\.level: must be one of trace, debug, info, warn, error, fatal, silent$/,
    );
    expect(() => parseLogLevel('LOUD')).toThrow(
      expect.objectContaining({
        code: 'INVALID_CONFIG',
        option: 'log.level',
        fields: { option: 'log.level', value: 'LOUD' },
      }),
    );
  });
});
