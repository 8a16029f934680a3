import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { watchdogMachine, type HeartbeatInfo, type WatchdogInput } from '../src/index.js';
import { evaluate, type WatchdogContext } from '../src/watchdog.types.js';
import {
  bareWatchdog,
  FakeBus,
  FakeHeartbeat,
  flush,
  LeavingHeartbeat,
  subjects,
} from './fakes.js';

function startWatchdog(options: Partial<WatchdogInput> = {}, heartbeat = new FakeHeartbeat()) {
  const clock = new SimulatedClock();
  const bus = new FakeBus();
  const actor = createActor(watchdogMachine, {
    clock,
    input: {
      nodeId: 'n1',
      heartbeat,
      bus,
      subjects,
      clock,
      heartbeatIntervalMs: 1000,
      livenessCheckIntervalMs: 5000,
      load: () => ({ inFlight: 2, concurrency: 8 }),
      ...options,
    },
  });
  actor.start();
  const advance = async (ms: number) => {
    await flush();
    clock.increment(ms);
    await flush();
  };
  const status = (node: string) => actor.getSnapshot().context.members[node]?.status;
  return { actor, heartbeat, bus, advance, status };
}

const hb = (nodeId: string, state: 'alive' | 'leaving' = 'alive') =>
  ({
    type: 'HEARTBEAT_RECEIVED',
    message: { nodeId, seq: 1, state, inFlight: 0, concurrency: 4 },
  }) as const;

describe('watchdog', () => {
  it('writes and publishes a heartbeat at start and on every interval', async () => {
    const { heartbeat, bus, advance } = startWatchdog();
    await flush();
    expect(heartbeat.beats).toEqual([
      { nodeId: 'n1', info: { state: 'alive', inFlight: 2, concurrency: 8 } },
    ]);
    expect(bus.published[0]).toEqual({
      subject: 'baton.g.hb.n1',
      message: { nodeId: 'n1', seq: 0, state: 'alive', inFlight: 2, concurrency: 8 },
    });
    await advance(1000);
    await advance(1000);
    expect(heartbeat.beats).toHaveLength(3);
    expect(bus.published.map((p) => p.message.seq)).toEqual([0, 1, 2]);
  });

  it('marks a silent member suspect, then gone, as time passes', async () => {
    const { actor, advance, status } = startWatchdog({ suspectAfterMs: 3000, goneAfterMs: 6000 });
    actor.send(hb('n2'));
    expect(status('n2')).toBe('alive');
    await advance(2000);
    actor.send(hb('n2'));
    await advance(2000);
    expect(status('n2')).toBe('alive');
    await advance(1000);
    expect(status('n2')).toBe('suspect');
    await advance(3000);
    expect(status('n2')).toBe('gone');
    actor.send(hb('n2'));
    expect(status('n2')).toBe('alive');
  });

  it('counts a member that says goodbye as gone at once', async () => {
    const { actor, status } = startWatchdog();
    actor.send(hb('n2'));
    actor.send(hb('n2', 'leaving'));
    expect(status('n2')).toBe('gone');
  });

  it('learns members from health_check, aged by PostgreSQL', async () => {
    const { heartbeat, advance, status } = startWatchdog({
      suspectAfterMs: 3000,
      goneAfterMs: 6000,
    });
    heartbeat.rows = [
      { nodeId: 'n2', heartbeatAgeMs: 100 },
      { nodeId: 'n3', heartbeatAgeMs: 4000 },
      { nodeId: 'n4', heartbeatAgeMs: 60_000 },
    ];
    await advance(5000);
    expect([status('n2'), status('n3'), status('n4')]).toEqual(['alive', 'suspect', 'gone']);
  });

  it('forgets a member silent for forgetAfterMs, and has its stale rows deleted', async () => {
    const heartbeat = new FakeHeartbeat();
    const { actor, advance, status } = startWatchdog(
      { suspectAfterMs: 3000, goneAfterMs: 6000, forgetAfterMs: 20_000 },
      heartbeat,
    );
    actor.send(hb('n2'));
    heartbeat.rows = [
      { nodeId: 'n3', heartbeatAgeMs: 10_000 },
      { nodeId: 'n4', heartbeatAgeMs: 25_000 }, // a node killed long ago
    ];
    await advance(5000);
    expect([status('n2'), status('n3'), status('n4')]).toEqual(['suspect', 'gone', undefined]);
    expect(heartbeat.pruned).toEqual([20_000]);
    expect(heartbeat.rows.map((r) => r.nodeId)).toEqual(['n3']);
    await advance(5000);
    expect(heartbeat.pruned).toEqual([20_000]); // nothing stale left: no delete
    await advance(10_000); // n2 silent for 20 s
    expect(status('n2')).toBeUndefined();
    expect(Object.keys(actor.getSnapshot().context.members)).toEqual(['n3']);
  });

  it('keeps the token holder in its view however long it is silent', () => {
    const clock = new SimulatedClock();
    const base = { clock, suspectAfterMs: 3000, goneAfterMs: 6000, forgetAfterMs: 20_000 };
    const members = {
      old: { nodeId: 'old', status: 'gone', lastSeenAt: 0, left: false },
      holder: { nodeId: 'holder', status: 'gone', lastSeenAt: 0, left: false },
    } as const;
    clock.increment(30_000);
    const view = evaluate({
      ...base,
      members,
      election: { holder: 'holder' },
    } as unknown as WatchdogContext);
    expect(Object.keys(view)).toEqual(['holder']);
    expect(view.holder?.status).toBe('gone');
  });

  it('forgets after 5 minutes by default, and after 3 gone thresholds with a slow heartbeat', () => {
    const forgetAfter = (options: Partial<WatchdogInput>) => {
      const actor = bareWatchdog(options);
      const ms = actor.getSnapshot().context.forgetAfterMs;
      actor.stop();
      return ms;
    };
    expect(forgetAfter({})).toBe(300_000);
    expect(forgetAfter({ heartbeatIntervalMs: 30_000, livenessCheckIntervalMs: 60_000 })).toBe(
      900_000,
    );
  });

  it('keeps beating after a failed write and counts it', async () => {
    const { heartbeat, advance, actor } = startWatchdog();
    await flush();
    heartbeat.failBeats = true;
    await advance(1000);
    expect(actor.getSnapshot().context.beatFailures).toBe(1);
    heartbeat.failBeats = false;
    await advance(1000);
    expect(heartbeat.beats).toHaveLength(2);
    expect(actor.getSnapshot().context.beats).toBe(2);
  });

  it('on LEAVE, publishes a leaving heartbeat and stops', async () => {
    const { actor, heartbeat, bus } = startWatchdog();
    await flush();
    actor.send({ type: 'LEAVE' });
    await flush();
    expect(heartbeat.beats.at(-1)?.info.state).toBe('leaving');
    expect(bus.published.at(-1)?.message.state).toBe('leaving');
    expect(actor.getSnapshot().status).toBe('done');
  });

  it('on LEAVE, removes its row when the heartbeat table can', async () => {
    const table = new LeavingHeartbeat();
    const { actor } = startWatchdog({}, table);
    await flush();
    actor.send({ type: 'LEAVE' });
    await flush();
    expect(table.left).toEqual(['n1']);
    expect(table.beats.map((b) => b.info.state)).toEqual(['alive']);
    expect(actor.getSnapshot().status).toBe('done');
  });

  it('on LEAVE during a beat, removes its row only once that beat is written (it would put the row back)', async () => {
    const order: string[] = [];
    let finishBeat!: () => void;
    class SlowTable extends LeavingHeartbeat {
      override async beat(nodeId: string, info: HeartbeatInfo): Promise<void> {
        await new Promise<void>((resolve) => (finishBeat = resolve));
        order.push('beat written');
        await super.beat(nodeId, info);
      }
      override async leave(nodeId: string): Promise<void> {
        order.push('row removed');
        await super.leave(nodeId);
      }
    }
    const table = new SlowTable();
    const { actor } = startWatchdog({}, table);
    await flush();
    actor.send({ type: 'LEAVE' });
    await flush();
    expect(order).toEqual([]);
    expect(actor.getSnapshot().status).toBe('active');
    finishBeat();
    await flush();
    expect(order).toEqual(['beat written', 'row removed']);
    expect(actor.getSnapshot().status).toBe('done');
  });

  it.each([
    ['goneAfterMs', { suspectAfterMs: 5000, goneAfterMs: 1000 }],
    ['forgetAfterMs', { goneAfterMs: 10_000, forgetAfterMs: 10_000 }],
  ])('refuses %s not above the threshold before it, naming the option', (name, thresholds) => {
    const actor = bareWatchdog(thresholds);
    actor.subscribe({ error: () => undefined });
    actor.start();
    expect(actor.getSnapshot().status).toBe('error');
    expect(String(actor.getSnapshot().error)).toMatch(name);
  });
});
