import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import {
  summarizeWatchdog,
  watchdogMachine,
  type MemberRecord,
  type WatchdogInput,
} from '../src/index.js';
import { bareWatchdog, FakeBus, FakeHeartbeat, FakeTokenTable, flush, subjects } from './fakes.js';
import { electionGroup, writesBy } from './election.harness.js';

// Defaults of these tests: lease 5000 ms, heartbeat 1000 ms, so a step-down
// margin of 500 ms (max(20, lease / 10)) and a jitter of at most 250 ms.

describe('election', () => {
  it('the first node takes the free token as term 1; the others stand by and see it', async () => {
    const g = electionGroup();
    const n1 = g.add('n1');
    await g.until(() => n1.role() === 'bearer');
    const n2 = g.add('n2');
    await g.tick(2000);
    expect(n1.context().election).toMatchObject({ role: 'bearer', term: 1, holder: 'n1' });
    expect(n2.context().election).toMatchObject({ role: 'standby', term: 1, holder: 'n1' });
    expect(n1.notices.map((n) => n.notice)).toEqual([{ type: 'ELECTION.BEARER', term: 1 }]);
    expect(g.table.grants).toMatchObject([{ term: 1, holder: 'n1', reason: 'first_grant' }]);
    // The bearer renews every heartbeat; standbys only read.
    expect(writesBy(g.table, 'n1').filter((e) => e.method === 'renew').length).toBeGreaterThan(1);
    expect(writesBy(g.table, 'n2')).toEqual([]);
    expect(summarizeWatchdog(n2.context())).toMatchObject({
      role: 'standby',
      term: 1,
      holder: 'n1',
    });
  });

  it("a standby takes over when the dead bearer's lease expires on the database clock", async () => {
    const g = electionGroup();
    const n1 = g.add('n1');
    await g.until(() => n1.role() === 'bearer');
    const n2 = g.add('n2', { random: 0.5 });
    await g.tick(3000);
    n1.kill(); // SIGKILL: no release
    const expiresAt = g.table.row!.expiresAt;
    await g.until(() => n2.role() === 'bearer');
    expect(g.table.grants.map((x) => [x.term, x.holder])).toEqual([
      [1, 'n1'],
      [2, 'n2'],
    ]);
    expect(g.table.grants[1]!.reason).toBe('lease_expired:n1');
    // Not before the lease ran out; soon after it (read at expiry + jitter).
    expect(g.table.grants[1]!.at).toBeGreaterThanOrEqual(expiresAt);
    expect(g.table.grants[1]!.at - expiresAt).toBeLessThan(500);
    expect(n2.notices.map((n) => n.notice)).toEqual([{ type: 'ELECTION.BEARER', term: 2 }]);
  });

  it('three standbys racing for the same observed term: exactly one wins (Ballerina flaw 1)', async () => {
    const g = electionGroup();
    g.table.row = { holder: 'dead', term: 1, expiresAt: 1000 };
    // Same jitter for all three: they acquire in the same instant.
    const nodes = ['c1', 'c2', 'c3'].map((id) => g.add(id, { random: 0 }));
    await g.until(() => nodes.some((n) => n.role() === 'bearer'));
    await g.tick(3000);
    const acquires = g.table.log.filter((e) => e.method === 'acquire');
    expect(acquires.map((e) => [e.node, e.term])).toEqual([
      ['c1', 1],
      ['c2', 1],
      ['c3', 1],
    ]);
    expect(g.table.grants.map((x) => x.term)).toEqual([2]);
    const bearers = nodes.filter((n) => n.role() === 'bearer');
    expect(bearers).toHaveLength(1);
    const winner = bearers[0]!.id;
    for (const n of nodes.filter((x) => x.id !== winner)) {
      expect(n.context().election).toMatchObject({
        role: 'standby',
        holder: winner,
        term: 2,
        lostRaces: 1,
      });
      expect(n.notices).toEqual([]);
    }
  });

  it('the bearer steps down on its own clock before its lease can expire when renews hang', async () => {
    const g = electionGroup();
    const n1 = g.add('n1');
    await g.until(() => n1.role() === 'bearer');
    await g.tick(2500);
    n1.port.hang.add('renew'); // renew promises never resolve
    const lastRenew = g.table.log.filter((e) => e.method === 'renew' && e.ok).at(-1)!;
    await g.until(() => n1.notices.length === 2);
    const stepDown = n1.notices[1]!;
    expect(stepDown.notice).toEqual({
      type: 'ELECTION.STANDBY',
      term: 1,
      reason: 'lease_deadline',
    });
    // Deadline: renew sent + lease - margin = +4500; the database lease runs until +5000.
    expect(stepDown.at - lastRenew.at).toBeGreaterThanOrEqual(4500);
    expect(stepDown.at - lastRenew.at).toBeLessThan(4600);
    expect(stepDown.token).toMatchObject({ holder: 'n1', term: 1 });
    expect(stepDown.token!.remainingMs).toBeGreaterThan(400);
    expect(n1.context().election.renewFailures).toBeGreaterThan(0);
  });

  it('a renew answered false (term lost) steps down at once', async () => {
    const g = electionGroup();
    const n1 = g.add('n1');
    await g.until(() => n1.role() === 'bearer');
    await g.tick(1500);
    // Another node holds a newer term (as after a takeover n1 did not notice).
    g.table.row = { holder: 'n9', term: 2, expiresAt: g.table.now + 10_000 };
    const stolenAt = g.table.now;
    await g.until(() => n1.role() !== 'bearer');
    expect(n1.notices.at(-1)!.notice).toEqual({
      type: 'ELECTION.STANDBY',
      term: 1,
      reason: 'term_lost',
    });
    // At the first renew after the steal: within one heartbeat.
    expect(n1.notices.at(-1)!.at - stolenAt).toBeLessThanOrEqual(1050);
    expect(n1.context().election.deadline).toBeNull();
  });

  it('a paused bearer (SIGSTOP past its lease, then SIGCONT) steps down before it writes again', async () => {
    const g = electionGroup();
    const n1 = g.add('n1');
    await g.until(() => n1.role() === 'bearer');
    const n2 = g.add('n2');
    await g.tick(2200);
    n1.paused = true;
    await g.until(() => n2.role() === 'bearer');
    await g.tick(2000);
    const mark = g.table.log.length;
    await g.resume(n1); // all its due timers fire at once, in order
    expect(n1.notices.map((n) => n.notice)).toEqual([
      { type: 'ELECTION.BEARER', term: 1 },
      { type: 'ELECTION.STANDBY', term: 1, reason: 'lease_deadline' },
    ]);
    await g.tick(3000);
    expect(writesBy(g.table, 'n1', mark)).toEqual([]);
    expect(n1.context().election).toMatchObject({ role: 'standby', holder: 'n2', term: 2 });
  });

  it('a resumed bearer does not trust a renew answer that arrives before its timers fire', async () => {
    const g = electionGroup();
    const n1 = g.add('n1');
    await g.until(() => n1.role() === 'bearer');
    const n2 = g.add('n2');
    await g.tick(1500);
    // The next renew is executed (true) but its answer is held: the process
    // is paused right after sending it.
    n1.port.holdReplies.add('renew');
    const renews = () => g.table.log.filter((e) => e.node === 'n1' && e.method === 'renew').length;
    const before = renews();
    await g.until(() => renews() > before, 5000, 10);
    n1.paused = true;
    await g.until(() => n2.role() === 'bearer');
    const mark = g.table.log.length;
    // SIGCONT: the monotonic clock has jumped; the socket's answer is handled first.
    n1.clockFloor = g.table.now;
    n1.port.holdReplies.clear();
    n1.port.deliverHeld();
    await g.tick(0);
    expect(n1.notices.at(-1)!.notice).toEqual({
      type: 'ELECTION.STANDBY',
      term: 1,
      reason: 'lease_deadline',
    });
    await g.resume(n1);
    await g.tick(2000);
    expect(writesBy(g.table, 'n1', mark)).toEqual([]);
  });

  it('on LEAVE the bearer releases and announces; a standby takes over without waiting for the lease', async () => {
    const g = electionGroup({}, 10);
    const n1 = g.add('n1');
    await g.until(() => n1.role() === 'bearer');
    const n2 = g.add('n2');
    await g.tick(2500);
    const leftAt = g.table.now;
    n1.send({ type: 'LEAVE' });
    const took = await g.until(() => n2.role() === 'bearer', 5000, 10);
    expect(took).toBeLessThanOrEqual(50);
    expect(g.table.grants.map((x) => [x.term, x.holder, x.reason])).toEqual([
      [1, 'n1', 'first_grant'],
      [2, 'n2', 'released'],
    ]);
    expect(g.table.grants[1]!.at - leftAt).toBeLessThanOrEqual(50);
    expect(n1.notices.at(-1)!.notice).toEqual({
      type: 'ELECTION.STANDBY',
      term: 1,
      reason: 'shutdown',
    });
    expect(n1.actor.getSnapshot().children.watchdog?.getSnapshot().status).toBe('done');
  });

  it('back-to-back handovers: each release announcement is acted on at once, whoever the standby last saw holding', async () => {
    const g = electionGroup({}, 10);
    const n1 = g.add('n1');
    await g.until(() => n1.role() === 'bearer');
    const n2 = g.add('n2');
    const n3 = g.add('n3');
    await g.tick(2500);
    n1.send({ type: 'RESIGN' });
    await g.until(() => [n2, n3].some((n) => n.role() === 'bearer'), 100, 5);
    const [next, last] = n2.role() === 'bearer' ? [n2, n3] : [n3, n2];
    // At once, before the last standby has read the token again.
    const resignedAt = g.table.now;
    next.send({ type: 'RESIGN' });
    const took = await g.until(() => last.role() === 'bearer', 1000, 5);
    expect(took).toBeLessThanOrEqual(20);
    expect(g.table.grants.map((x) => [x.term, x.holder, x.reason])).toEqual([
      [1, 'n1', 'first_grant'],
      [2, next.id, 'released'],
      [3, last.id, 'released'],
    ]);
    expect(g.table.grants[2]!.at - resignedAt).toBeLessThanOrEqual(20);
  });

  it('RESIGN (start of a drain) releases at once while the heartbeats go on', async () => {
    const g = electionGroup({}, 10);
    const n1 = g.add('n1');
    await g.until(() => n1.role() === 'bearer');
    const n2 = g.add('n2');
    await g.tick(1500);
    const mark = g.table.log.length;
    n1.send({ type: 'RESIGN' });
    await g.until(() => n2.role() === 'bearer', 100, 10);
    await g.tick(3000);
    expect(n1.role()).toBeNull();
    expect(n1.context().beats).toBeGreaterThan(3);
    expect(writesBy(g.table, 'n1', mark).map((e) => e.method)).toEqual(['release']);
  });

  it('a node that lost the token competes again and wins later (Ballerina flaw 3)', async () => {
    const g = electionGroup();
    const n1 = g.add('n1');
    await g.until(() => n1.role() === 'bearer');
    const n2 = g.add('n2');
    await g.tick(1500);
    n1.port.hang.add('renew');
    n1.port.fail.add('acquire');
    await g.until(() => n2.role() === 'bearer');
    n1.port.hang.clear();
    n1.port.fail.clear();
    await g.tick(3000);
    n2.kill();
    await g.until(() => n1.role() === 'bearer');
    const terms = n1.notices.map((n) => n.notice);
    expect(terms).toEqual([
      { type: 'ELECTION.BEARER', term: 1 },
      { type: 'ELECTION.STANDBY', term: 1, reason: 'lease_deadline' },
      { type: 'ELECTION.BEARER', term: 3 },
    ]);
    expect(g.table.grants.map((x) => [x.term, x.holder])).toEqual([
      [1, 'n1'],
      [2, 'n2'],
      [3, 'n1'],
    ]);
  });

  it('a yielding bearer releases and sits out its cool-down, then competes again', async () => {
    const g = electionGroup({ yieldCooldownMs: 3000 }, 10);
    const n1 = g.add('n1');
    await g.until(() => n1.role() === 'bearer');
    await g.tick(1000);
    n1.send({ type: 'YIELD', term: 7 }); // not its term: ignored
    await g.tick(100);
    expect(n1.role()).toBe('bearer');
    n1.send({ type: 'YIELD', term: 1, reason: 'job failing' });
    await g.tick(10);
    expect(g.table.current()).toMatchObject({ holder: null, term: 1 });
    expect(n1.notices.at(-1)!.notice).toMatchObject({ term: 1, reason: 'yielded' });
    const yieldedAt = g.table.now;
    await g.until(() => n1.role() === 'bearer');
    expect(g.table.now - yieldedAt).toBeGreaterThanOrEqual(2990);
    expect(n1.context().election.term).toBe(2);
  });

  it('a standby that finds its own live lease (a lost answer) releases it and competes again', async () => {
    const g = electionGroup();
    g.table.row = { holder: 'n1', term: 4, expiresAt: 60_000 };
    const n1 = g.add('n1');
    await g.until(() => n1.role() === 'bearer', 2000);
    expect(n1.context().election.term).toBe(5);
    expect(g.table.log.filter((e) => e.method === 'release')).toMatchObject([
      { term: 4, ok: true },
    ]);
  });

  it('refuses an election without a leadership port, or a lease shorter than two heartbeats', () => {
    const start = (input: Partial<WatchdogInput>) => {
      const actor = bareWatchdog(input);
      actor.subscribe({ error: () => undefined });
      actor.start();
      return String(actor.getSnapshot().error);
    };
    expect(start({ election: {} })).toMatch(/leadership/);
    const port = new FakeTokenTable().connect('n1');
    expect(start({ leadership: port, election: { leaseMs: 1500, heartbeatMs: 1000 } })).toMatch(
      /election\.leaseMs.*two heartbeats/,
    );
    expect(
      start({
        leadership: port,
        election: { leaseMs: 3000, heartbeatMs: 1000, stepDownMarginMs: 2500 },
      }),
    ).toMatch(/stepDownMarginMs/);
  });
});

describe('the step-down timer', () => {
  /** A database that answers no heartbeat write or member read any more (a partition). */
  class SilentHeartbeat extends FakeHeartbeat {
    override beat(): Promise<void> {
      return new Promise(() => undefined);
    }
    override members(): Promise<MemberRecord[]> {
      return new Promise(() => undefined);
    }
  }

  it('fired a fraction of a millisecond early (Node truncates the delay), is set again: the step-down is on time', async () => {
    const sim = new SimulatedClock();
    sim.set(0.3);
    // Node's setTimeout truncates a fractional delay, so a timer may fire up to
    // a millisecond before the deadline on the election's clock.
    const timers = {
      setTimeout: (fn: (...args: unknown[]) => void, ms: number) =>
        sim.setTimeout(fn, Math.trunc(ms)),
      clearTimeout: (id: unknown) => sim.clearTimeout(id as never),
    };
    const table = new FakeTokenTable();
    const port = table.connect('n1');
    port.replyDelay = (method) => (method === 'acquire' ? 1 : 0); // a fractional deadline
    const actor = createActor(watchdogMachine, {
      clock: timers,
      input: {
        nodeId: 'n1',
        heartbeat: new SilentHeartbeat(),
        bus: new FakeBus(),
        subjects,
        clock: { now: () => sim.now() },
        leadership: port,
        heartbeatIntervalMs: 100,
        livenessCheckIntervalMs: 500,
        election: { leaseMs: 500, heartbeatMs: 100, jitterMs: 0, random: () => 0 },
      },
    });
    actor.start();
    const step = async (ms: number) => {
      sim.increment(ms);
      table.advance(ms);
      await flush();
    };
    for (let i = 0; i < 6; i++) await step(0.5);
    const election = () => actor.getSnapshot().context.election;
    expect(election().role).toBe('bearer');
    const deadline = election().deadline!;
    expect(Number.isInteger(deadline)).toBe(false);
    port.hang.add('renew');
    let stepDownAt: number | undefined;
    while (sim.now() < 700 && stepDownAt === undefined) {
      await step(0.5);
      if (election().role !== 'bearer') stepDownAt = sim.now();
    }
    const databaseLeaseEnd = table.grants[0]!.at + 500;
    expect(stepDownAt).toBeGreaterThanOrEqual(deadline);
    expect(stepDownAt! - deadline).toBeLessThanOrEqual(2);
    expect(stepDownAt!).toBeLessThan(databaseLeaseEnd - 40);
    expect(election().lastStepDown).toMatchObject({ reason: 'lease_deadline' });
    actor.stop();
  });
});
