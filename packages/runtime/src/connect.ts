/**
 * A client without a node: connects to PostgreSQL (and NATS when given),
 * applies migrations, and offers the typed client API. For producers that
 * only submit and inspect, and for tools such as the demo.
 */
import { createScheduleStore, createStore, type Store } from '@baton/store';
import type { Bus } from './bus/bus.js';
import { openBus } from './bus-factory.js';
import { createClient, type BatonClient } from './client.js';
import { compileConfig, type DatabaseOptions, type NatsOptions } from './config.js';
import { pgPoolConfig } from './pg-config.js';
import { scheduleCalendar } from './schedule/spec.js';
import { schedulerApi } from './schedules.js';

export interface ClientOptions {
  readonly database: DatabaseOptions;
  /** Without it, wake-ups go over PostgreSQL LISTEN/NOTIFY. */
  readonly nats?: NatsOptions;
  /** @default 'default' */
  readonly groupId?: string;
  /** A name for this client in logs and pg_stat_activity. @default 'client' */
  readonly name?: string;
}

export interface ConnectedClient extends BatonClient, AsyncDisposable {
  readonly store: Store;
  readonly bus: Bus;
  close(): Promise<void>;
}

/**
 * Connects a client.
 *
 * @example
 * await using client = await connectClient({ database: { url: process.env.DATABASE_URL }, groupId: 'orders' });
 * await client.enqueue({ type: 'email.send', payload: { to: 'ada@example.com' } });
 */
export async function connectClient(options: ClientOptions): Promise<ConnectedClient> {
  const config = compileConfig({
    database: options.database,
    ...(options.nats ? { nats: options.nats } : {}),
    ...(options.groupId ? { groupId: options.groupId } : {}),
    nodeId: options.name ?? 'client',
    http: false,
  });
  const store = createStore({
    connection: pgPoolConfig(config.database, `baton:${config.nodeId}`),
    schema: config.database.schema,
    maxPayloadBytes: config.maxPayloadBytes,
  });
  let bus: Bus | undefined;
  try {
    await store.migrate();
    bus = await openBus(config, store.pool);
  } catch (error) {
    await store.close();
    throw error;
  }
  const schedules = createScheduleStore(store, scheduleCalendar);
  const client = createClient({
    store,
    bus,
    groupId: config.groupId,
    from: config.nodeId,
    scheduler: schedulerApi(schedules, config.groupId, () => undefined),
  });
  const openBusRef = bus;
  const close = async () => {
    await openBusRef.close().catch(() => undefined);
    await store.close();
  };
  return Object.assign(client, { store, bus: openBusRef, close, [Symbol.asyncDispose]: close });
}
