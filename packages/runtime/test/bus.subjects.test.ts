import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '@baton/store';
import { groupSubjects, validateGroup, validateNode } from '../src/bus/subjects.js';

describe('groupSubjects', () => {
  const s = groupSubjects('orders');

  it('builds every subject under baton.<group>', () => {
    expect(s.prefix).toBe('baton.orders');
    expect(s.heartbeat('node-1')).toBe('baton.orders.hb.node-1');
    expect(s.heartbeats).toBe('baton.orders.hb.*');
    expect(s.dispatch('default')).toBe('baton.orders.dispatch.default');
    expect(s.dispatchAll).toBe('baton.orders.dispatch.*');
    expect(s.submit('email.send')).toBe('baton.orders.submit.email.send');
    expect(s.submitAll).toBe('baton.orders.submit.>');
    expect(s.jsSubmit('email.send')).toBe('baton.orders.js.submit.email.send');
    expect(s.jsSubmitAll).toBe('baton.orders.js.submit.>');
    expect(s.status).toBe('baton.orders.status');
    expect(s.statusOf('node-1')).toBe('baton.orders.status.node-1');
    expect(s.cancel).toBe('baton.orders.cancel');
    expect(s.taskEvent('completed')).toBe('baton.orders.events.task.completed');
    expect(s.taskEvents).toBe('baton.orders.events.task.*');
    expect(Object.isFrozen(s)).toBe(true);
  });

  it('reads the type back from submit subjects and the node from heartbeats', () => {
    expect(s.typeOf('baton.orders.submit.email.send')).toBe('email.send');
    expect(s.typeOf('baton.orders.js.submit.report')).toBe('report');
    expect(s.typeOf('baton.other.submit.email')).toBeUndefined();
    expect(s.typeOf('baton.orders.submit.')).toBeUndefined();
    expect(s.nodeOf('baton.orders.hb.node-1')).toBe('node-1');
    expect(s.nodeOf('baton.orders.hb.a.b')).toBeUndefined();
  });

  it.each([
    ['group', () => groupSubjects('a.b')],
    ['group', () => groupSubjects('')],
    ['group', () => groupSubjects('a*')],
    ['group', () => validateGroup(7)],
    ['node', () => s.heartbeat('n 1')],
    ['node', () => s.statusOf('>')],
    ['node', () => validateNode('x'.repeat(129))],
    ['queue', () => s.dispatch('a.b')],
    ['type', () => s.submit('email..send')],
    ['type', () => s.submit('*')],
    ['type', () => s.jsSubmit('.x')],
    ['status', () => s.taskEvent('a.b')],
  ])('rejects a bad %s with INVALID_ARGUMENT naming the field', (field, build) => {
    let caught: unknown;
    try {
      build();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidArgumentError);
    expect(caught).toMatchObject({ code: 'INVALID_ARGUMENT', fields: { field } });
    expect((caught as Error).message.startsWith(`${field}:`)).toBe(true);
  });
});
