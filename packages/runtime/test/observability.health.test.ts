import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import {
  LoopMonitor,
  createHealthCheck,
  type BusProbeResult,
  type DatabaseProbe,
  type HealthReport,
} from '../src/observability/health.js';
import { startHttpServer, type HttpServerHandle } from '../src/observability/http.js';
import { ObservabilityConfigError } from '../src/observability/errors.js';

/** A clock the test moves by hand. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

const busUp = (): BusProbeResult => ({ kind: 'nats', connected: true, reconnects: 0 });
const dbUp: DatabaseProbe = async () => undefined;

describe('LoopMonitor', () => {
  it('is stalled when busy with no progress past the threshold, and recovers on progress', () => {
    const clock = manualClock();
    const loop = new LoopMonitor({ stallThresholdMs: 10_000, now: clock.now });
    loop.busy();
    clock.advance(10_000);
    expect(loop.check()).toEqual({ ok: true, lastProgressAgoMs: 10_000, idle: false });
    clock.advance(1);
    loop.busy(); // still busy: does not reset the stall clock
    expect(loop.check()).toEqual({ ok: false, lastProgressAgoMs: 10_001, idle: false });
    loop.progress();
    expect(loop.check()).toEqual({ ok: true, lastProgressAgoMs: 0, idle: false });
  });

  it('starts busy, so a loop that never reports is stalled after the threshold', () => {
    const clock = manualClock();
    const loop = new LoopMonitor({ stallThresholdMs: 500, now: clock.now });
    clock.advance(501);
    expect(loop.check().ok).toBe(false);
  });

  it('is healthy while idle by choice, however long, and starts the stall clock when work arrives', () => {
    const clock = manualClock();
    const loop = new LoopMonitor({ stallThresholdMs: 1_000, now: clock.now });
    loop.idle();
    clock.advance(3_600_000);
    expect(loop.check()).toMatchObject({ ok: true, idle: true });
    loop.busy();
    expect(loop.check()).toEqual({ ok: true, lastProgressAgoMs: 0, idle: false });
    clock.advance(1_001);
    expect(loop.check().ok).toBe(false);
  });

  it('with idleSilenceMs, treats an idle loop that stopped reporting as dead', () => {
    const clock = manualClock();
    const loop = new LoopMonitor({ stallThresholdMs: 1_000, idleSilenceMs: 5_000, now: clock.now });
    loop.idle();
    clock.advance(4_000);
    loop.idle(); // the fallback poll found nothing again
    clock.advance(5_000);
    expect(loop.check().ok).toBe(true);
    clock.advance(1);
    expect(loop.check()).toMatchObject({ ok: false, idle: true });
  });

  it('rejects a bad threshold, naming the option', () => {
    expect(() => new LoopMonitor({ stallThresholdMs: 0 })).toThrow(ObservabilityConfigError);
    expect(() => new LoopMonitor({ stallThresholdMs: Number.NaN })).toThrow(
      /health\.stallThresholdMs/,
    );
  });
});

describe('createHealthCheck', () => {
  it('reports every check, the node id and the uptime when all is well', async () => {
    const clock = manualClock();
    const loop = new LoopMonitor({ now: clock.now });
    const health = createHealthCheck({
      nodeId: 'n1',
      loop,
      database: dbUp,
      bus: busUp,
      now: clock.now,
    });
    loop.progress();
    clock.advance(2_500);
    const report = await health();
    expect(report).toEqual({
      status: 'ok',
      checks: {
        database: { ok: true, latencyMs: 0 },
        bus: { ok: true, kind: 'nats', connected: true, reconnects: 0 },
        worker: { ok: true, lastProgressAgoMs: 2_500, idle: false },
      },
      nodeId: 'n1',
      uptimeS: 2,
    } satisfies HealthReport);
  });

  it('reports a database probe failure by name with its code, as degraded by default', async () => {
    const loop = new LoopMonitor();
    loop.idle();
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), {
      code: 'ECONNREFUSED',
    });
    const health = createHealthCheck({
      nodeId: 'n1',
      loop,
      database: () => Promise.reject(refused),
      bus: () => ({ kind: 'nats', connected: false, reconnects: 3 }),
    });
    const report = await health();
    expect(report.status).toBe('degraded');
    expect(report.checks.database).toEqual({
      ok: false,
      error: 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:5432',
    });
    expect(report.checks.bus).toEqual({ ok: false, kind: 'nats', connected: false, reconnects: 3 });
    expect(report.checks.worker.ok).toBe(true);
  });

  it('is down when a check named critical fails', async () => {
    const loop = new LoopMonitor();
    loop.idle();
    const health = createHealthCheck({
      nodeId: 'n1',
      loop,
      critical: ['database', 'worker'],
      database: () => Promise.reject(new Error('password authentication failed')),
      bus: busUp,
    });
    const report = await health();
    expect(report.status).toBe('down');
    expect(report.checks.database.error).toBe('password authentication failed');
  });

  it('times out a database probe that does not answer and aborts its signal', async () => {
    let signal: AbortSignal | undefined;
    const loop = new LoopMonitor();
    loop.idle();
    const health = createHealthCheck({
      nodeId: 'n1',
      loop,
      databaseTimeoutMs: 50,
      database: (s) => {
        signal = s;
        return new Promise(() => undefined);
      },
      bus: busUp,
    });
    const report = await health();
    expect(report.checks.database).toEqual({ ok: false, error: 'no answer within 50 ms' });
    expect(signal?.aborted).toBe(true);
  });

  it('shares one database probe between concurrent health checks', async () => {
    let probes = 0;
    let release!: () => void;
    const loop = new LoopMonitor();
    const health = createHealthCheck({
      nodeId: 'n1',
      loop,
      database: () => {
        probes += 1;
        return new Promise<void>((resolve) => (release = resolve));
      },
      bus: busUp,
    });
    const reports = Promise.all([health(), health(), health()]);
    await new Promise((r) => setImmediate(r));
    release();
    expect((await reports).every((r) => r.checks.database.ok)).toBe(true);
    expect(probes).toBe(1);
    const next = health();
    release();
    await next;
    expect(probes).toBe(2);
  });

  it('reports a bus probe that throws as not connected', async () => {
    const health = createHealthCheck({
      nodeId: 'n1',
      loop: new LoopMonitor(),
      database: dbUp,
      bus: () => {
        throw new Error('closed');
      },
    });
    expect((await health()).checks.bus).toEqual({ ok: false, kind: 'unknown', connected: false });
  });
});

describe('GET /health', () => {
  let server: HttpServerHandle | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('answers 503 when the worker loop stalled with work pending, and 200 when idle by choice', async () => {
    const clock = manualClock();
    const loop = new LoopMonitor({ stallThresholdMs: 30_000, now: clock.now });
    const health = createHealthCheck({
      nodeId: 'n1',
      loop,
      database: dbUp,
      bus: busUp,
      now: clock.now,
    });
    server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      health,
      ready: () => true,
      registry: new Registry(),
    });

    loop.busy();
    clock.advance(30_001);
    const stalled = await fetch(`${server.url}/health`);
    expect(stalled.status).toBe(503);
    expect(stalled.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await stalled.json()) as HealthReport;
    expect(body.status).toBe('down');
    expect(body.checks.worker).toEqual({ ok: false, lastProgressAgoMs: 30_001, idle: false });
    expect(body.checks.database.ok).toBe(true);

    loop.idle();
    clock.advance(600_000);
    const idle = await fetch(`${server.url}/health`);
    expect(idle.status).toBe(200);
    expect(((await idle.json()) as HealthReport).checks.worker).toMatchObject({
      ok: true,
      idle: true,
    });
  });

  it('answers 200 with status degraded when only the database fails, naming it', async () => {
    const loop = new LoopMonitor();
    loop.idle();
    const health = createHealthCheck({
      nodeId: 'n1',
      loop,
      database: () => Promise.reject(new Error('the database system is shutting down')),
      bus: busUp,
    });
    server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      health,
      ready: () => true,
      registry: new Registry(),
    });
    const res = await fetch(`${server.url}/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as HealthReport;
    expect(body.status).toBe('degraded');
    expect(body.checks.database).toEqual({
      ok: false,
      error: 'the database system is shutting down',
    });
  });
});
