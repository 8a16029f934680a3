/**
 * The LISTEN connection of one PostgreSQL bus: a dedicated `pg.Client` (never
 * a pooled one), the channels it LISTENs to, pings, and reconnects with
 * exponential backoff and jitter. LISTEN, UNLISTEN and the install of a new
 * connection run one at a time, so a subscription made during a reconnect is
 * never missed: the new connection LISTENs to every channel wanted when it is
 * installed, and later LISTENs queue behind it.
 */
import pg from 'pg';
import { NotifyStore } from '@baton/store';
import type { BusEvent } from './bus.js';
import type { CompiledPostgresBusOptions } from './postgres.options.js';
import { toBusError } from './postgres.inbox.js';

/** What the listener needs from its bus. */
export interface ListenerHooks {
  /** Every channel the bus wants now (subscriptions and its reply inbox). */
  wanted(): Iterable<string>;
  onNotification(channel: string, payload: string | undefined): void;
  emit(event: BusEvent): void;
}

type ListenerOptions = Pick<
  CompiledPostgresBusOptions,
  'listener' | 'reconnectDelayMs' | 'reconnectMaxDelayMs' | 'connectTimeoutMs'
>;

/** The LISTEN connection. `start()` once, then `listen`/`unlisten`; `close()` at the end. */
export class PgListener {
  readonly #opts: ListenerOptions;
  readonly #hooks: ListenerHooks;
  readonly #lost = new WeakSet<pg.Client>();
  #client: pg.Client | undefined;
  #listening = new Set<string>();
  #ops: Promise<unknown> = Promise.resolve();
  #reconnecting: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #reconnects = 0;
  #stopping = false;

  constructor(options: ListenerOptions, hooks: ListenerHooks) {
    this.#opts = options;
    this.#hooks = hooks;
  }

  /** True while a connection is installed and LISTENing. */
  get connected(): boolean {
    return this.#client !== undefined && !this.#stopping;
  }

  /** Successful reconnects (the first connect is not one). */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** Connects and LISTENs to every wanted channel; rejects when that fails. */
  async start(): Promise<void> {
    const client = await this.#open();
    try {
      await this.#serial(() => this.#install(client));
    } catch (error) {
      // Not installed: nobody else would end it (LISTEN refused on a standby, say).
      this.#lostConnection(client);
      throw error;
    }
  }

  /** LISTENs to `channel` unless it already does; while disconnected, the reconnect will. */
  listen(channel: string): Promise<void> {
    return this.#serial(async () => {
      const client = this.#client;
      if (client === undefined || this.#listening.has(channel)) return;
      try {
        await NotifyStore.listen(client, channel);
        this.#listening.add(channel);
      } catch (error) {
        // Lost meanwhile: the reconnect LISTENs to every wanted channel.
        if (client !== this.#client || this.#lost.has(client)) return;
        throw error;
      }
    });
  }

  /** UNLISTENs to `channel` if the bus no longer wants it (checked when it runs). */
  unlisten(channel: string): Promise<void> {
    return this.#serial(async () => {
      const client = this.#client;
      if (client === undefined || !this.#listening.has(channel)) return;
      for (const wanted of this.#hooks.wanted()) if (wanted === channel) return;
      this.#listening.delete(channel);
      await NotifyStore.unlisten(client, channel).catch(() => undefined);
    });
  }

  /** Pings the connection; one that does not answer in time is treated as lost. */
  async ping(): Promise<void> {
    const client = this.#client;
    if (!client) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error('the LISTEN connection did not answer a ping in time')),
        this.#opts.connectTimeoutMs,
      );
    });
    try {
      await Promise.race([client.query('select 1'), timeout]);
    } catch (error) {
      this.#lostConnection(client, error instanceof Error ? error : new Error(String(error)));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops reconnecting and ends the connection. */
  async close(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#reconnecting;
    await this.#ops.catch(() => undefined);
    const client = this.#client;
    this.#client = undefined;
    if (client) {
      this.#lost.add(client);
      await client.end().catch(() => undefined);
    }
  }

  async #open(): Promise<pg.Client> {
    const client = new pg.Client({ ...this.#opts.listener });
    client.on('error', (error) => this.#lostConnection(client, error));
    client.on('end', () => this.#lostConnection(client));
    client.on('notification', (n) => this.#hooks.onNotification(n.channel, n.payload));
    try {
      await client.connect();
    } catch (error) {
      this.#lost.add(client);
      await client.end().catch(() => undefined);
      throw error;
    }
    return client;
  }

  /** LISTENs to every channel wanted now, then makes `client` the listener. Runs in #serial. */
  async #install(client: pg.Client): Promise<void> {
    const wanted = new Set(this.#hooks.wanted());
    for (const channel of wanted) await NotifyStore.listen(client, channel);
    if (this.#lost.has(client)) throw new Error('the LISTEN connection was lost while starting');
    this.#client = client;
    this.#listening = wanted;
  }

  /** Runs LISTEN/UNLISTEN/install one at a time, so they never interleave. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#ops.then(fn, fn);
    this.#ops = run.catch(() => undefined);
    return run;
  }

  #lostConnection(client: pg.Client, error?: Error): void {
    if (this.#lost.has(client)) return;
    this.#lost.add(client);
    void client.end().catch(() => undefined);
    if (client !== this.#client) return; // not installed: its opener sees the failure
    this.#client = undefined;
    this.#listening = new Set();
    if (this.#stopping) return;
    this.#hooks.emit({ type: 'disconnected' });
    if (error) this.#hooks.emit({ type: 'error', error });
    this.#reconnecting ??= this.#reconnect().finally(() => (this.#reconnecting = undefined));
  }

  async #reconnect(): Promise<void> {
    const { reconnectDelayMs, reconnectMaxDelayMs } = this.#opts;
    for (let attempt = 0; !this.#stopping; attempt++) {
      const ceiling = Math.min(reconnectMaxDelayMs, reconnectDelayMs * 2 ** Math.min(attempt, 30));
      await this.#sleep(ceiling / 2 + (Math.random() * ceiling) / 2);
      if (this.#stopping) return;
      this.#hooks.emit({ type: 'reconnecting' });
      let client: pg.Client | undefined;
      try {
        client = await this.#open();
        const opened = client;
        await this.#serial(() => this.#install(opened));
      } catch (error) {
        if (client) this.#lostConnection(client);
        const failure = toBusError(error, 'reconnect of the LISTEN connection');
        this.#hooks.emit({ type: 'error', error: failure });
        continue;
      }
      if (this.#stopping) return; // close() ends the client it finds installed
      this.#reconnects += 1;
      this.#hooks.emit({ type: 'reconnected', reconnects: this.#reconnects });
      return;
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
