/**
 * The election with a slow database, at the production defaults
 * (heartbeatFrequency 0.1 s, livenessCheckInterval 0.5 s: a step-down
 * margin of 50 ms, so a bearer's deadline is 450 ms after the send of its
 * last successful renew). A slow but successful round trip must never end
 * a tenure; only the deadline, a refused renew, or a pause may.
 */
import { describe, expect, it } from 'vitest';
import {
  compileElection,
  MAX_RENEWS_IN_FLIGHT,
  renewedDeadline,
  summarizeWatchdog,
} from '../src/index.js';
import { electionGroup, type TestNode } from './election.harness.js';
import type { FakeTokenTable } from './fakes.js';

const DEFAULTS = { leaseMs: 500, heartbeatMs: 100 };
const DEADLINE_AFTER_SEND = 450;

const calls = (table: FakeTokenTable, node: string, method: string) =>
  table.log.filter((e) => e.node === node && e.method === method);

/** A group at the defaults whose n1 is bearer, renewing at once, for `settleMs`. */
async function bearerGroup(settleMs = 300) {
  const g = electionGroup(DEFAULTS, 10);
  const n1 = g.add('n1');
  await g.until(() => n1.role() === 'bearer');
  await g.tick(settleMs);
  return { g, n1 };
}

/** Ticks until `node` sends its next renew; returns that renew's log entry (at = send time). */
async function nextRenew(g: ReturnType<typeof electionGroup>, node: TestNode) {
  const before = calls(g.table, node.id, 'renew').length;
  await g.until(() => calls(g.table, node.id, 'renew').length > before, 1000, 10);
  return calls(g.table, node.id, 'renew').at(-1)!;
}

/** n1 bearer, n2 a standby whose jitter (990 ms) a read-found free token would wait out. */
async function handoverGroup() {
  const g = electionGroup({ ...DEFAULTS, jitterMs: 1000 }, 5);
  const n1 = g.add('n1');
  await g.until(() => n1.role() === 'bearer');
  const n2 = g.add('n2', { random: 0.99 });
  await g.tick(300);
  return { g, n1, n2 };
}

describe('election with a slow database', () => {
  it('a renew answered after 250 ms keeps the bearer and extends its deadline from its own send time', async () => {
    const { g, n1 } = await bearerGroup();
    const lastPrompt = calls(g.table, 'n1', 'renew').at(-1)!;
    expect(n1.context().election.deadline).toBe(lastPrompt.at + DEADLINE_AFTER_SEND);
    n1.port.replyDelay = (m) => (m === 'renew' ? 250 : 0);
    const slow = await nextRenew(g, n1);
    expect(slow.at).toBe(lastPrompt.at + 100); // fixed cadence
    await g.tick(240);
    // Not answered yet: still in flight (never abandoned), and more were sent on cadence.
    expect(n1.context().election.renews.map((r) => r.sentAt)).toEqual([
      slow.at,
      slow.at + 100,
      slow.at + 200,
    ]);
    await g.tick(20); // the answer arrives at +250
    expect(n1.role()).toBe('bearer');
    expect(n1.context().election.deadline).toBe(slow.at + DEADLINE_AFTER_SEND);
    expect(n1.context().election.lateRenews).toBe(1);
    // Every renew takes 250 ms from now on: the tenure goes on.
    await g.tick(5000);
    expect(n1.role()).toBe('bearer');
    expect(n1.notices.map((n) => n.notice)).toEqual([{ type: 'ELECTION.BEARER', term: 1 }]);
    expect(n1.context().election).toMatchObject({ stepDowns: 0, renewFailures: 0 });
    expect(n1.context().election.lateRenews).toBeGreaterThan(40);
  });

  it('one late success is enough: with the next renews hanging, the step-down comes 450 ms after ITS send', async () => {
    const { g, n1 } = await bearerGroup();
    n1.port.replyDelay = (m) => (m === 'renew' ? 250 : 0);
    const slow = await nextRenew(g, n1);
    n1.port.hang.add('renew'); // every later renew never answers
    await g.until(() => n1.role() !== 'bearer', 2000, 10);
    const stepDown = n1.notices.at(-1)!;
    expect(stepDown.notice).toEqual({
      type: 'ELECTION.STANDBY',
      term: 1,
      reason: 'lease_deadline',
    });
    expect(stepDown.at - slow.at).toBeGreaterThanOrEqual(DEADLINE_AFTER_SEND);
    expect(stepDown.at - slow.at).toBeLessThan(DEADLINE_AFTER_SEND + 10);
    // Before PostgreSQL's lease (slow.at + 500) ran out.
    expect(stepDown.token).toMatchObject({ holder: 'n1', term: 1 });
    expect(stepDown.token!.remainingMs).toBeGreaterThanOrEqual(40);
  });

  it('renews that all take 150 ms keep the tenure indefinitely; slow standby reads are not abandoned', async () => {
    const g = electionGroup(DEFAULTS, 10);
    const n1 = g.add('n1');
    await g.until(() => n1.role() === 'bearer');
    const n2 = g.add('n2');
    await g.tick(300);
    n1.port.replyDelay = () => 150;
    n2.port.replyDelay = () => 150;
    const readsBefore = calls(g.table, 'n2', 'current').length;
    await g.tick(30_000);
    expect(n1.role()).toBe('bearer');
    expect(n1.notices).toHaveLength(1);
    expect(g.table.grants).toHaveLength(1);
    expect(summarizeWatchdog(n1.context())).toMatchObject({
      stepDowns: 0,
      renewFailures: 0,
      renewsHeldBack: 0,
    });
    expect(n1.context().election.lateRenews).toBeGreaterThan(250);
    // The bearer kept a deadline well ahead of it all along (checked at the end).
    const { deadline } = n1.context().election;
    expect(deadline! - n1.sim.now()).toBeGreaterThan(DEADLINE_AFTER_SEND - 300);
    // The standby never competed, and its reads all completed: one as soon as the last answered.
    expect(n2.context().election).toMatchObject({
      role: 'standby',
      holder: 'n1',
      acquisitions: 0,
      lostRaces: 0,
      readFailures: 0,
    });
    const reads = calls(g.table, 'n2', 'current').length - readsBefore;
    expect(reads).toBeGreaterThanOrEqual(30_000 / 170);
    expect(reads).toBeLessThanOrEqual(30_000 / 150 + 1);
    expect(g.table.now - n2.context().election.readAt!).toBeLessThanOrEqual(170);
  });

  it('renews that hang forever still step down at the deadline, with at most 3 in flight', async () => {
    const { g, n1 } = await bearerGroup();
    const lastPrompt = calls(g.table, 'n1', 'renew').at(-1)!;
    n1.port.hang.add('renew');
    await g.until(() => n1.role() !== 'bearer', 2000, 10);
    const stepDown = n1.notices.at(-1)!;
    expect(stepDown.notice).toEqual({
      type: 'ELECTION.STANDBY',
      term: 1,
      reason: 'lease_deadline',
    });
    expect(stepDown.at - lastPrompt.at).toBeGreaterThanOrEqual(DEADLINE_AFTER_SEND);
    expect(stepDown.at - lastPrompt.at).toBeLessThan(DEADLINE_AFTER_SEND + 10);
    expect(stepDown.token!.remainingMs).toBeGreaterThanOrEqual(40);
    // Renews at +100, +200, +300 went out; at +400 the limit held the next one back.
    expect(n1.context().election).toMatchObject({
      renewFailures: MAX_RENEWS_IN_FLIGHT,
      renewsHeldBack: 1,
      renews: [],
      deadline: null,
    });
  });

  it('a late success arriving after the deadline does not revive the tenure; the node competes again normally', async () => {
    const { g, n1 } = await bearerGroup();
    const lastPrompt = calls(g.table, 'n1', 'renew').at(-1)!;
    // Executed by PostgreSQL when sent (so they succeed), answered 600 ms later.
    n1.port.replyDelay = (m) => (m === 'renew' ? 600 : 0);
    await g.until(() => n1.role() !== 'bearer', 2000, 10);
    const stepDownAt = g.table.now;
    expect(stepDownAt - lastPrompt.at).toBeLessThan(DEADLINE_AFTER_SEND + 10);
    expect(n1.notices.at(-1)!.notice).toMatchObject({ term: 1, reason: 'lease_deadline' });
    n1.port.replyDelay = () => 0;
    // The three late `true` answers arrive at +700, +800, +900.
    await g.tick(lastPrompt.at + 1000 - g.table.now);
    expect(
      calls(g.table, 'n1', 'renew').filter((e) => e.term === 1 && e.at > lastPrompt.at),
    ).toMatchObject([{ ok: true }, { ok: true }, { ok: true }]);
    // None was taken into account: the node found its own stale lease, gave
    // it back, and won term 2 like any standby.
    expect(n1.notices.map((n) => n.notice)).toEqual([
      { type: 'ELECTION.BEARER', term: 1 },
      { type: 'ELECTION.STANDBY', term: 1, reason: 'lease_deadline' },
      { type: 'ELECTION.BEARER', term: 2 },
    ]);
    expect(calls(g.table, 'n1', 'release')).toMatchObject([{ term: 1, ok: true }]);
    expect(n1.context().election).toMatchObject({ role: 'bearer', term: 2, lateRenews: 0 });
    expect(n1.context().election.deadline).toBe(
      calls(g.table, 'n1', 'renew').at(-1)!.at + DEADLINE_AFTER_SEND,
    );
  });

  it('a renew answered false still steps down at once, even with others in flight', async () => {
    const { g, n1 } = await bearerGroup();
    n1.port.replyDelay = (m) => (m === 'renew' ? 250 : 0);
    await nextRenew(g, n1);
    await nextRenew(g, n1);
    // Taken over meanwhile (as after a takeover n1 did not notice): the answers are false.
    g.table.row = { holder: 'n9', term: 2, expiresAt: g.table.now + 10_000 };
    const stolenAt = g.table.now;
    const third = await nextRenew(g, n1);
    expect(third.ok).toBe(false);
    await g.until(() => n1.role() !== 'bearer', 1000, 10);
    expect(n1.notices.at(-1)!.notice).toEqual({
      type: 'ELECTION.STANDBY',
      term: 1,
      reason: 'term_lost',
    });
    // The two earlier (successful) renews answered first and kept it; the false one ended it.
    expect(g.table.now - stolenAt).toBeLessThanOrEqual(100 + 250 + 10);
  });

  it('a release announcement makes a standby acquire at once, without a read or jitter', async () => {
    const { g, n1, n2 } = await handoverGroup();
    const mark = g.table.log.length;
    n1.send({ type: 'RESIGN' });
    const took = await g.until(() => n2.role() === 'bearer', 1000, 5);
    expect(took).toBeLessThanOrEqual(10);
    const released = g.table.log.slice(mark).find((e) => e.method === 'release')!;
    expect(g.table.grants[1]).toMatchObject({ term: 2, holder: 'n2', reason: 'released' });
    expect(g.table.grants[1]!.at - released.at).toBeLessThanOrEqual(5);
    // Straight to the compare-and-set: no read of the token in between.
    const n2Calls = g.table.log.slice(mark).filter((e) => e.node === 'n2' && e.at >= released.at);
    expect(n2Calls[0]).toMatchObject({ method: 'acquire', term: 1 });
  });

  it('a release announced while its acquire is in flight is acted on when that acquire is refused', async () => {
    const { g, n1, n2 } = await handoverGroup();
    n2.port.replyDelay = (m) => (m === 'acquire' ? 50 : 0);
    const beat = { seq: 99, state: 'alive', inFlight: 0, concurrency: 1 } as const;
    // An announcement that reaches n2 before n1 has let go: n2's compare-and-set
    // runs while n1 still holds term 1, and its refusal is answered 50 ms later.
    n2.send({
      type: 'HEARTBEAT_RECEIVED',
      message: { ...beat, nodeId: 'n7', role: 'standby', term: 1, released: 1 },
    });
    await g.tick(10);
    expect(calls(g.table, 'n2', 'acquire')).toMatchObject([{ term: 1 }]);
    // n1 releases and announces it while that refusal is on its way.
    n1.send({ type: 'RESIGN' });
    const took = await g.until(() => n2.role() === 'bearer', 2000, 5);
    expect(took).toBeLessThanOrEqual(40 + 50 + 10);
    // Refused, then straight to a second compare-and-set: no read, no jitter
    // (then the new bearer's first renew, at once).
    const n2Calls = g.table.log.filter((e) => e.node === 'n2');
    const first = n2Calls.findIndex((e) => e.method === 'acquire');
    expect(n2Calls.slice(first).map((e) => e.method)).toEqual(['acquire', 'acquire', 'renew']);
    expect(g.table.grants[1]).toMatchObject({ term: 2, holder: 'n2', reason: 'released' });
  });

  it('a release announced during a refused acquire is dropped when the refusal shows a newer term', async () => {
    const { g, n1, n2 } = await handoverGroup();
    const n3 = g.add('n3');
    await g.tick(300);
    // n2's acquire runs on the database only when it is answered, 50 ms after it is sent.
    n2.port.replyDelay = (m) => (m === 'acquire' ? 50 : 0);
    n2.port.executeOnReply = true;
    const beat = { seq: 99, state: 'alive', inFlight: 0, concurrency: 1 } as const;
    n2.send({
      type: 'HEARTBEAT_RECEIVED',
      message: { ...beat, nodeId: 'n7', role: 'standby', term: 1, released: 1 },
    });
    await g.tick(10);
    // n1 releases term 1 and announces it; n3 takes it (term 2) before n2's acquire runs.
    n1.send({ type: 'RESIGN' });
    await g.until(() => n3.role() === 'bearer', 1000, 5);
    await g.tick(100);
    expect(calls(g.table, 'n2', 'acquire')).toHaveLength(1);
    expect(n2.role()).toBe('standby');
    expect(g.table.grants.map((x) => [x.term, x.holder])).toEqual([
      [1, 'n1'],
      [2, 'n3'],
    ]);
  });

  it('only an announced release (or the holder leaving) makes a standby acquire at once, not a "standby" heartbeat', async () => {
    const g = electionGroup({ ...DEFAULTS, jitterMs: 1000 }, 5);
    const n1 = g.add('n1');
    await g.until(() => n1.role() === 'bearer');
    const n2 = g.add('n2');
    await g.tick(300);
    const acquires = () => calls(g.table, 'n2', 'acquire').length;
    const before = acquires();
    const beat = { seq: 99, state: 'alive', inFlight: 0, concurrency: 1 } as const;
    // The holder says "standby" (it stepped down; its release has not committed): no acquire.
    n2.send({
      type: 'HEARTBEAT_RECEIVED',
      message: { ...beat, nodeId: 'n1', role: 'standby', term: 1 },
    });
    await g.tick(20);
    expect(acquires()).toBe(before);
    // An announced release acts at once, from whichever node announces it.
    n2.send({
      type: 'HEARTBEAT_RECEIVED',
      message: { ...beat, nodeId: 'n7', role: 'standby', term: 1, released: 1 },
    });
    await g.tick(10);
    expect(calls(g.table, 'n2', 'acquire').slice(before)).toMatchObject([{ term: 1 }]);
  });

  it('a grant answered 300 ms after its send is kept: the first renew goes at once, not a heartbeat later', async () => {
    // The store's acquire is three round trips (begin and lock, the
    // compare-and-set, commit): 300 ms with the database 100 ms away. Here its
    // lease starts when it is sent, the earliest it could; renews take 100 ms.
    const g = electionGroup(DEFAULTS, 10);
    const n1 = g.add('n1');
    n1.port.replyDelay = (m) => (m === 'acquire' ? 300 : 100);
    await g.until(() => n1.role() === 'bearer', 2000, 10);
    const acquire = calls(g.table, 'n1', 'acquire')[0]!;
    expect(g.table.now - acquire.at).toBe(300);
    // The first renew was sent with the answer, and answered 100 ms later,
    // before the deadline the grant gave (450 ms after its send).
    expect(calls(g.table, 'n1', 'renew')).toMatchObject([{ at: g.table.now, ok: true }]);
    await g.tick(100);
    expect(n1.context().election.deadline).toBe(acquire.at + 300 + DEADLINE_AFTER_SEND);
    await g.tick(5000);
    expect(n1.notices.map((n) => n.notice)).toEqual([{ type: 'ELECTION.BEARER', term: 1 }]);
    expect(g.table.grants).toHaveLength(1);
    expect(n1.context().election).toMatchObject({ role: 'bearer', stepDowns: 0, renewFailures: 0 });
  });

  it("a grant that waited for the fence lock counts its deadline from its compare-and-set's send, not the acquire's", async () => {
    // The store's acquire: 100 ms round trips, its lock statement (there 50
    // ms after the call, sent at 10 ms) waiting 150 ms for the old bearer's
    // fenced work: answered 450 ms after the call.
    const g = electionGroup(DEFAULTS, 10);
    g.table.fencedUntil = 210;
    const n1 = g.add('n1');
    n1.port.storeAcquire = { roundTripMs: 100 };
    n1.port.replyDelay = () => 100;
    await g.until(() => n1.role() === 'bearer', 2000, 10);
    const { sentAt, deadline } = n1.context().election;
    expect(sentAt).toBe(10);
    expect(g.table.now - sentAt!).toBe(450);
    // Counted from the call, the deadline would already have passed. The
    // compare-and-set was sent 250 ms in (reported a step late by this
    // harness: its node clock lags the database's within a tick) and ran
    // on the database 50 ms later: the deadline falls in between, so still
    // before the lease in PostgreSQL can expire.
    const granted = g.table.grants[0]!;
    expect(granted.at - sentAt!).toBe(300);
    expect(deadline).toBeGreaterThanOrEqual(sentAt! + 240 + DEADLINE_AFTER_SEND);
    expect(deadline).toBeLessThanOrEqual(granted.at + DEADLINE_AFTER_SEND);
    await g.tick(5000);
    expect(n1.notices.map((n) => n.notice)).toEqual([{ type: 'ELECTION.BEARER', term: 1 }]);
    expect(g.table.grants).toHaveLength(1);
    expect(n1.context().election).toMatchObject({ role: 'bearer', stepDowns: 0, renewFailures: 0 });
  });

  it('with renews hanging, such a grant steps down before its lease runs out in PostgreSQL', async () => {
    const g = electionGroup(DEFAULTS, 10);
    g.table.fencedUntil = 210;
    const n1 = g.add('n1');
    n1.port.storeAcquire = { roundTripMs: 100 };
    n1.port.hang.add('renew');
    await g.until(() => n1.role() === 'bearer', 2000, 10);
    await g.until(() => n1.role() !== 'bearer', 2000, 10);
    const stepDown = n1.notices.at(-1)!;
    expect(stepDown.notice).toEqual({
      type: 'ELECTION.STANDBY',
      term: 1,
      reason: 'lease_deadline',
    });
    expect(stepDown.at).toBeLessThanOrEqual(g.table.grants[0]!.at + DEADLINE_AFTER_SEND);
    expect(stepDown.token).toMatchObject({ holder: 'n1', term: 1 });
    expect(stepDown.token!.remainingMs).toBeGreaterThanOrEqual(50);
  });

  it('a handover behind long fenced work: acquires that give up on the fence lock are retried until one gets the term', async () => {
    const g = electionGroup(DEFAULTS, 10);
    const n1 = g.add('n1');
    await g.until(() => n1.role() === 'bearer');
    const n2 = g.add('n2');
    n2.port.storeAcquire = { roundTripMs: 20 };
    await g.tick(300);
    // n1 resigns while its fenced statement runs on for 1.2 s.
    const fencedUntil = g.table.now + 1200;
    g.table.fencedUntil = fencedUntil;
    n1.send({ type: 'RESIGN' });
    let waiting = 0;
    await g.until(() => {
      waiting = Math.max(waiting, g.table.lockWaiting);
      return n2.role() === 'bearer';
    }, 3000);
    // Each acquire gave up on the lock (lock_timeout = its lease) about when
    // the election abandoned it (after a lease) and read the token again:
    // never more than one waiting, holding a connection. The one in flight
    // when the fenced work ended got the term at once.
    expect(waiting).toBe(1);
    expect(g.table.now - fencedUntil).toBeLessThanOrEqual(100);
    expect(g.table.grants.map((x) => [x.term, x.holder, x.reason])).toEqual([
      [1, 'n1', 'first_grant'],
      [2, 'n2', 'released'],
    ]);
    expect(n2.notices.map((n) => n.notice)).toEqual([{ type: 'ELECTION.BEARER', term: 2 }]);
  });

  it('a failed acquire (a lock timeout, a lost connection) is counted and retried a heartbeat later', async () => {
    const g = electionGroup(DEFAULTS, 10);
    const n1 = g.add('n1');
    n1.port.fail.add('acquire');
    await g.tick(1000);
    // Back to standby after each failure; the next read (a heartbeat after
    // the failed acquire was sent) finds the token free again.
    const { role, acquisitions, readFailures } = n1.context().election;
    expect({ role, acquisitions }).toEqual({ role: 'standby', acquisitions: 0 });
    expect(readFailures).toBeGreaterThanOrEqual(9);
    expect(readFailures).toBeLessThanOrEqual(11);
    n1.port.fail.clear();
    await g.until(() => n1.role() === 'bearer', 200, 10);
    expect(n1.notices.map((n) => n.notice)).toEqual([{ type: 'ELECTION.BEARER', term: 1 }]);
  });

  it('an acquire answered past the deadline it would have is given back, not acted on', async () => {
    const g = electionGroup(DEFAULTS, 10);
    const n1 = g.add('n1');
    let slow = true;
    n1.port.replyDelay = (m) => (m === 'acquire' && slow ? 470 : 0);
    await g.until(() => calls(g.table, 'n1', 'acquire').length === 1, 1000, 10);
    slow = false;
    await g.until(() => n1.role() === 'bearer', 2000, 10);
    // Term 1 was granted 470 ms before its answer: released unused; term 2 is borne.
    expect(g.table.grants.map((x) => [x.term, x.holder])).toEqual([
      [1, 'n1'],
      [2, 'n1'],
    ]);
    expect(calls(g.table, 'n1', 'release')).toMatchObject([{ term: 1, ok: true }]);
    expect(n1.notices.map((n) => n.notice)).toEqual([{ type: 'ELECTION.BEARER', term: 2 }]);
  });
});

describe('step-down margin', () => {
  it('defaults to max(20, lease / 10), never above lease / 5', () => {
    const margin = (leaseMs: number, heartbeatMs: number) =>
      compileElection({}, { leaseMs, heartbeatMs }).stepDownMarginMs;
    expect(margin(500, 100)).toBe(50);
    expect(margin(5000, 1000)).toBe(500);
    expect(margin(150, 50)).toBe(20);
    expect(margin(60, 20)).toBe(12);
  });

  it('measures a renewed deadline from the oldest renew still in flight sent before it', () => {
    const config = compileElection({}, DEFAULTS);
    const renews = [
      { seq: 1, sentAt: 1000 },
      { seq: 2, sentAt: 1100 },
      { seq: 3, sentAt: 1200 },
    ];
    // Answered in order: its own send time.
    expect(renewedDeadline(config, renews, 1)).toBe(1000 + 450);
    // Renew 2 answered before renew 1: renew 1 may still commit later and set
    // the lease back to its own start, so the deadline counts from renew 1.
    expect(renewedDeadline(config, renews, 2)).toBe(1000 + 450);
    expect(renewedDeadline(config, renews.slice(1), 3)).toBe(1100 + 450);
    expect(renewedDeadline(config, renews, 9)).toBeNull();
  });
});
