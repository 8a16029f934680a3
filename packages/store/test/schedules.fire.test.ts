import { describe, expect, it } from 'vitest';
import { createScheduleStore, type ScheduleInput, type ScheduleStore } from '../src/index.js';
import { sleep, useStore } from './helpers.js';
import { testCalendar } from './schedules.calendar.js';

const ctx = useStore();
let cached: ScheduleStore | undefined;
const schedules = () => (cached ??= createScheduleStore(ctx.store, testCalendar));
const at = (d: Date, ms: number) => new Date(d.getTime() + ms);

/** An interval schedule anchored one second from now (PostgreSQL's clock). */
async function intervalSchedule(
  over: Partial<ScheduleInput> & { groupId: string },
  trigger: object = {},
  startTime?: Date,
) {
  const start = startTime ?? at(await ctx.store.now(), 1000);
  const { schedule } = await schedules().create({
    task: { type: 'tick.run', payload: { hello: 'world' }, priority: 3 },
    trigger: { kind: 'interval', intervalMs: 1000, startTime: start, ...trigger },
    ...over,
  });
  return { schedule, start };
}

async function taskCount(prefix: string): Promise<{ n: number; distinct: number }> {
  const { rows } = await ctx.store.pool.query<{ n: number; distinct: number }>(
    `select count(*)::int as n, count(distinct idempotency_key)::int as distinct
       from baton.tasks where idempotency_key like $1`,
    [`schedule:${prefix}:%`],
  );
  return rows[0]!;
}

describe('fireDue: each tick materialised once across concurrent firers', () => {
  it('5 concurrent firers, interval 10 ms, maxCount 50, real time: 50 ticks and 50 tasks', async () => {
    const { schedule } = await schedules().create({
      id: 'c50',
      groupId: 'conc',
      task: { type: 'tick.run' },
      trigger: { kind: 'interval', intervalMs: 10, maxCount: 50 },
    });
    let fired = 0;
    for (let round = 0; round < 500; round++) {
      const outs = await Promise.all(
        Array.from({ length: 5 }, () =>
          schedules().fireDue({ groupId: 'conc', limit: 10, maxTicksPerSchedule: 3 }),
        ),
      );
      for (const o of outs) if (o.ok) fired += o.fired;
      if ((await schedules().get('c50'))?.state === 'finished') break;
      await sleep(3);
    }
    const after = (await schedules().get('c50'))!;
    expect(after).toMatchObject({
      state: 'finished',
      endReason: 'completed',
      firedCount: 50,
      nextDueAt: null,
    });
    expect(fired).toBe(50);
    const ticks = await schedules().ticks('c50');
    expect(ticks).toHaveLength(50);
    // due_n = anchor + n * interval: no drift, whatever the firing lateness
    expect(ticks.map((t) => t.dueAt.getTime() - schedule.anchorAt.getTime())).toEqual(
      Array.from({ length: 50 }, (_, n) => n * 10),
    );
    expect(new Set(ticks.map((t) => t.taskId)).size).toBe(50);
    expect(await taskCount('c50')).toEqual({ n: 50, distinct: 50 });
  });

  it('10 schedules x 50 ticks, 5 firers racing on simulated time: 500 tasks, no duplicates', async () => {
    const dbNow = await ctx.store.now();
    for (let i = 0; i < 10; i++) {
      await schedules().create({
        id: `sim-${i}`,
        groupId: 'sim',
        task: { type: 'tick.run' },
        trigger: { kind: 'interval', intervalMs: 100, maxCount: 50, startTime: at(dbNow, 1000) },
      });
    }
    const now = at(dbNow, 3_600_000);
    let fired = 0;
    for (let round = 0; round < 100; round++) {
      const outs = await Promise.all(
        Array.from({ length: 5 }, () =>
          schedules().fireDue({ groupId: 'sim', now, limit: 3, maxTicksPerSchedule: 7 }),
        ),
      );
      for (const o of outs) if (o.ok) fired += o.fired;
      if ((await schedules().getRunningJobs('sim')).length === 0) break;
    }
    expect(fired).toBe(500);
    expect(await taskCount('sim-%')).toEqual({ n: 500, distinct: 500 });
    for (const s of await schedules().list('sim')) expect(s.firedCount).toBe(50);
  });

  it('a second firer of an already materialised tick is harmless (counted as a duplicate)', async () => {
    const { schedule, start } = await intervalSchedule({ id: 'dup', groupId: 'dup' });
    const first = await schedules().fireDue({ groupId: 'dup', now: at(start, 2500), limit: 10 });
    expect(first).toMatchObject({ ok: true, fired: 3 });
    // simulate a firer that read an old next_due_at
    await ctx.store.pool.query(`update baton.schedules set next_due_at = $2 where id = $1`, [
      schedule.id,
      start,
    ]);
    const second = await schedules().fireDue({ groupId: 'dup', now: at(start, 2500), limit: 10 });
    expect(second).toMatchObject({ ok: true, fired: 0, schedules: [{ duplicates: 3 }] });
    expect(await taskCount('dup')).toEqual({ n: 3, distinct: 3 });
  });
});

describe('fireDue: ticks and tasks', () => {
  it('a tick becomes a task due at the tick, with the template and the key schedule:<id>:<due>', async () => {
    const { start } = await intervalSchedule({
      id: 'tpl',
      groupId: 'tpl',
      task: { type: 'tick.run', payload: { a: 1 }, queue: 'q1', priority: 7, maxAttempts: 2 },
    });
    const out = await schedules().fireDue({ groupId: 'tpl', now: start, limit: 10 });
    if (!out.ok) throw new Error('unfenced fire refused');
    const tick = out.schedules[0]!.ticks[0]!;
    expect(tick.dueAt).toEqual(start);
    const task = (await ctx.store.tasks.get(tick.taskId))!;
    expect(task).toMatchObject({
      type: 'tick.run',
      queue: 'q1',
      payload: { a: 1 },
      priority: 7,
      maxAttempts: 2,
      status: 'pending',
      runAt: start,
      idempotencyKey: `schedule:tpl:${start.toISOString()}`,
    });
    expect(await schedules().forTask(tick.taskId)).toMatchObject({
      schedule: { id: 'tpl' },
      dueAt: start,
    });
    expect((await schedules().get('tpl'))!.nextDueAt).toEqual(at(start, 1000));
  });

  it('nothing is due before its time; nextWakeup tells when', async () => {
    const { start } = await intervalSchedule({ groupId: 'early' });
    expect(await schedules().fireDue({ groupId: 'early', limit: 10 })).toMatchObject({
      ok: true,
      fired: 0,
      schedules: [],
    });
    const wake = (await schedules().nextWakeup('early'))!;
    expect(wake.dueAt).toEqual(start);
    expect(wake.inMs).toBeGreaterThan(0);
    expect(wake.inMs).toBeLessThanOrEqual(1000);
  });

  it('a one-time job fires once and is finished', async () => {
    const when = at(await ctx.store.now(), 500);
    await schedules().create({
      id: 'once',
      groupId: 'once',
      task: { type: 'tick.run' },
      trigger: { kind: 'once', at: when },
    });
    const out = await schedules().fireDue({ groupId: 'once', now: at(when, 10_000), limit: 10 });
    expect(out).toMatchObject({
      ok: true,
      fired: 1,
      schedules: [{ finished: true, ticks: [{ dueAt: when }] }],
    });
    expect(
      await schedules().fireDue({ groupId: 'once', now: at(when, 20_000), limit: 10 }),
    ).toMatchObject({ fired: 0 });
    expect(await schedules().get('once')).toMatchObject({
      state: 'finished',
      endReason: 'completed',
      firedCount: 1,
    });
  });
});

describe('waiting policies after an outage', () => {
  it('WAIT fires every missed tick; IGNORE only the latest, counting the skipped ones', async () => {
    const wait = await intervalSchedule({ id: 'w', groupId: 'out-w' });
    const ignore = await intervalSchedule({
      id: 'i',
      groupId: 'out-i',
      taskPolicy: { waitingPolicy: 'IGNORE' },
    });
    const logIgnore = await intervalSchedule({
      id: 'li',
      groupId: 'out-li',
      taskPolicy: { waitingPolicy: 'LOG_AND_IGNORE' },
    });
    // nothing fired for 5.5 intervals
    const w = await schedules().fireDue({ groupId: 'out-w', now: at(wait.start, 5500), limit: 10 });
    expect(w).toMatchObject({
      ok: true,
      fired: 6,
      skipped: 0,
      schedules: [{ log: false, nextDueAt: at(wait.start, 6000) }],
    });
    const i = await schedules().fireDue({
      groupId: 'out-i',
      now: at(ignore.start, 5500),
      limit: 10,
    });
    expect(i).toMatchObject({
      ok: true,
      fired: 1,
      skipped: 5,
      schedules: [
        {
          log: false,
          ticks: [{ dueAt: at(ignore.start, 5000) }],
          nextDueAt: at(ignore.start, 6000),
        },
      ],
    });
    const li = await schedules().fireDue({
      groupId: 'out-li',
      now: at(logIgnore.start, 5500),
      limit: 10,
    });
    expect(li).toMatchObject({ fired: 1, skipped: 5, schedules: [{ log: true }] });
    expect(await schedules().get('i')).toMatchObject({ firedCount: 1, skippedCount: 5 });
    // back on time: one tick each, on the same grid (no drift after the catch-up)
    for (const [g, s] of [
      ['out-w', wait],
      ['out-i', ignore],
    ] as const) {
      const o = await schedules().fireDue({ groupId: g, now: at(s.start, 6000), limit: 10 });
      expect(o).toMatchObject({
        fired: 1,
        skipped: 0,
        schedules: [{ ticks: [{ dueAt: at(s.start, 6000) }] }],
      });
    }
  });

  it('pause all, wait several intervals, resume: WAIT fires the missed ticks, IGNORE does not', async () => {
    const wait = await intervalSchedule({ id: 'pw', groupId: 'pause' });
    await intervalSchedule({ id: 'pi', groupId: 'pause', taskPolicy: { waitingPolicy: 'IGNORE' } });
    expect(await schedules().pauseAll('pause')).toBe(2);
    expect(
      await schedules().fireDue({ groupId: 'pause', now: at(wait.start, 4500), limit: 10 }),
    ).toMatchObject({ fired: 0 });
    await schedules().resumeAll('pause');
    const out = await schedules().fireDue({
      groupId: 'pause',
      now: at(wait.start, 4600),
      limit: 10,
    });
    if (!out.ok) throw new Error('refused');
    const by = Object.fromEntries(out.schedules.map((s) => [s.scheduleId, s]));
    expect(by['pw']).toMatchObject({ skipped: 0 });
    expect(by['pw']!.ticks).toHaveLength(5);
    expect(by['pi']).toMatchObject({ skipped: 4 });
    expect(by['pi']!.ticks).toHaveLength(1);
  });

  it('maxCount and endTime stop a schedule, under WAIT and under IGNORE', async () => {
    const max = await intervalSchedule({ id: 'max3', groupId: 'stop' }, { maxCount: 3 });
    const endAt = at(max.start, 2500);
    await intervalSchedule({ id: 'end', groupId: 'stop' }, { endTime: endAt }, max.start);
    await intervalSchedule(
      { id: 'end-i', groupId: 'stop', taskPolicy: { waitingPolicy: 'IGNORE' } },
      { endTime: endAt },
      max.start,
    );
    const out = await schedules().fireDue({
      groupId: 'stop',
      now: at(max.start, 60_000),
      limit: 10,
    });
    if (!out.ok) throw new Error('refused');
    const by = Object.fromEntries(out.schedules.map((s) => [s.scheduleId, s]));
    expect(by['max3']!.ticks.map((t) => t.dueAt.getTime() - max.start.getTime())).toEqual([
      0, 1000, 2000,
    ]);
    expect(by['end']!.ticks.map((t) => t.dueAt.getTime() - max.start.getTime())).toEqual([
      0, 1000, 2000,
    ]);
    expect(by['end-i']).toMatchObject({ skipped: 2, ticks: [{ dueAt: at(max.start, 2000) }] });
    for (const id of ['max3', 'end', 'end-i']) {
      expect(await schedules().get(id)).toMatchObject({
        state: 'finished',
        endReason: 'completed',
        nextDueAt: null,
      });
    }
    expect(await schedules().getRunningJobs('stop')).toEqual([]);
  });
});

describe('leader-only firing', () => {
  it('a stale term is refused and nothing is written; the current term fires', async () => {
    const { leadership, tasks } = ctx.store;
    await leadership.acquire({ groupId: 'fence', nodeId: 'n1', observedTerm: 0, leaseMs: 10 });
    await sleep(30);
    await leadership.acquire({ groupId: 'fence', nodeId: 'n2', observedTerm: 1, leaseMs: 60_000 });
    const { start } = await intervalSchedule({ id: 'fenced', groupId: 'fence' });
    const before = tasks.stats.staleTerms;
    const stale = await schedules().fireDue({
      groupId: 'fence',
      now: at(start, 2500),
      limit: 10,
      fence: { groupId: 'fence', term: 1 },
    });
    expect(stale).toEqual({ ok: false, reason: 'stale_term', currentTerm: 2 });
    expect(tasks.stats.staleTerms).toBe(before + 1);
    expect(await schedules().ticks('fenced')).toEqual([]);
    expect((await schedules().get('fenced'))!.firedCount).toBe(0);
    const fresh = await schedules().fireDue({
      groupId: 'fence',
      now: at(start, 2500),
      limit: 10,
      fence: { groupId: 'fence', term: 2 },
    });
    expect(fresh).toMatchObject({ ok: true, fired: 3 });
  });
});

describe('error policies after a dead-lettered tick', () => {
  /** Fires a schedule's first tick and claims its task (running, under `leaseMs`). */
  async function runOneTick(
    groupId: string,
    errorPolicy: 'TERMINATE' | 'CONTINUE' | 'LOG_AND_TERMINATE',
    leaseMs = 60_000,
  ) {
    const { schedule, start } = await intervalSchedule({
      id: `ep-${groupId}`,
      groupId,
      task: { type: 'tick.fail', queue: groupId, maxAttempts: 1 },
      taskPolicy: { errorPolicy },
    });
    const out = await schedules().fireDue({ groupId, now: start, limit: 10 });
    if (!out.ok) throw new Error('refused');
    const taskId = out.schedules[0]!.ticks[0]!.taskId;
    expect(await schedules().onTickFailed(taskId)).toBeNull(); // pending: not a failure yet
    await ctx.store.pool.query('update baton.tasks set run_at = now() where id = $1', [taskId]);
    const [claimed] = await ctx.store.tasks.claim({
      owner: 'w',
      queue: groupId,
      limit: 1,
      leaseMs,
      start: true,
    });
    expect(claimed?.id).toBe(taskId);
    return { schedule, taskId, claimed: claimed! };
  }

  async function deadLetterOneTick(
    groupId: string,
    errorPolicy: 'TERMINATE' | 'CONTINUE' | 'LOG_AND_TERMINATE',
  ) {
    const { schedule, taskId, claimed } = await runOneTick(groupId, errorPolicy);
    await ctx.store.tasks.fail({
      id: claimed.id,
      attempt: claimed.attempt,
      error: { message: 'boom' },
      retryable: false,
    });
    return { schedule, taskId };
  }

  it('TERMINATE / LOG_AND_TERMINATE end the schedule; CONTINUE keeps it firing', async () => {
    const t = await deadLetterOneTick('ep-t', 'TERMINATE');
    // Ended by the failure's own statement, before anyone reads the outcome.
    expect(await schedules().get(t.schedule.id)).toMatchObject({
      state: 'finished',
      endReason: 'terminated',
    });
    expect(await schedules().onTickFailed(t.taskId)).toMatchObject({
      scheduleId: t.schedule.id,
      errorPolicy: 'TERMINATE',
      action: 'terminated',
      log: false,
    });
    expect(await schedules().get(t.schedule.id)).toMatchObject({
      state: 'finished',
      endReason: 'terminated',
    });
    // Asked again: still this failure that ended it.
    expect(await schedules().onTickFailed(t.taskId)).toMatchObject({ action: 'terminated' });
    const lt = await deadLetterOneTick('ep-lt', 'LOG_AND_TERMINATE');
    expect(await schedules().onTickFailed(lt.taskId)).toMatchObject({
      action: 'terminated',
      log: true,
    });
    const c = await deadLetterOneTick('ep-c', 'CONTINUE');
    expect(await schedules().onTickFailed(c.taskId)).toMatchObject({
      action: 'continued',
      log: false,
    });
    expect(await schedules().get(c.schedule.id)).toMatchObject({
      state: 'active',
      endReason: null,
    });
    // a task that is no tick
    const { id } = await ctx.store.tasks.enqueue({ type: 'plain' });
    expect(await schedules().onTickFailed(id)).toBeNull();
  });

  it('a dead letter by lease rescue ends the schedule in the rescue statement itself', async () => {
    const { schedule, taskId } = await runOneTick('ep-rescue', 'TERMINATE', 1);
    await new Promise((r) => setTimeout(r, 20));
    const rescued = await ctx.store.tasks.rescueExpired({ node: 'r' });
    expect(rescued).toContainEqual(expect.objectContaining({ id: taskId, status: 'dead_letter' }));
    expect(await schedules().get(schedule.id)).toMatchObject({
      state: 'finished',
      endReason: 'terminated',
    });
    expect(await schedules().onTickFailed(taskId)).toMatchObject({ action: 'terminated' });
  });

  it("an old tick's task does not reach a schedule deleted and created again with the same id", async () => {
    const { schedule, claimed } = await runOneTick('ep-reborn', 'TERMINATE');
    await schedules().unschedule(schedule.id);
    const { schedule: reborn } = await intervalSchedule({
      id: schedule.id,
      groupId: 'ep-reborn',
      task: { type: 'tick.fail', queue: 'ep-reborn' },
      taskPolicy: { errorPolicy: 'TERMINATE' },
    });
    await ctx.store.tasks.fail({
      id: claimed.id,
      attempt: claimed.attempt,
      error: { message: 'boom' },
      retryable: false,
    });
    expect(await schedules().onTickFailed(claimed.id)).toBeNull();
    expect(await schedules().get(reborn.id)).toMatchObject({ state: 'active', endReason: null });
  });
});
