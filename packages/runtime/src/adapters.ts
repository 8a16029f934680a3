/**
 * Adapters from the runtime's parts to the actors' ports: the bus (with the
 * codec), the heartbeat table, and the logger.
 */
import type { BusPayload, BusPort, HeartbeatPort, Logger as ActorLogger } from '@baton/actors';
import type { Logger as PinoLogger } from 'pino';
import type { NodeStore, PreviousBeat } from '@baton/store';
import type { Bus } from './bus/bus.js';
import { decodeMessage, encodeMessage } from './bus/codec.js';
import { BusError } from './bus/errors.js';

/** A message the bus refused because it is disconnected. */
export const isDisconnected = (error: unknown): boolean =>
  error instanceof BusError && error.code === 'DISCONNECTED';

/**
 * The actors' bus port over a {@link Bus}: plain objects in, msgpack on the
 * wire. `onDrop` hears of a message received that cannot be decoded;
 * `onUnsent` of one not sent because the bus is disconnected (a hint lost,
 * counted rather than failed: a watchdog would otherwise log every heartbeat
 * of a long outage).
 */
export function busPort(
  bus: Bus,
  onDrop: (subject: string, reason: string) => void,
  onUnsent: (subject: string) => void,
): BusPort {
  return {
    publish: (subject, message) =>
      bus.publish(subject, encodeMessage(message)).catch((error: unknown) => {
        if (!isDisconnected(error)) throw error;
        onUnsent(subject);
      }),
    subscribe(subject, handler) {
      const subscription = bus.subscribe(subject, (msg) => {
        let decoded: unknown;
        try {
          decoded = decodeMessage(msg.data);
        } catch (error) {
          onDrop(msg.subject, error instanceof Error ? error.message : String(error));
          return;
        }
        if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) {
          onDrop(msg.subject, 'message is not a map');
          return;
        }
        handler(decoded as BusPayload, msg.subject);
      });
      return async () => {
        const sub = await subscription.catch(() => undefined);
        await sub?.unsubscribe();
      };
    },
  };
}

/** This process's mark in its heartbeat rows, and what to do when another writes them. */
export interface BeatIdentity {
  /** Unique to this process (host, pid and a random part). */
  readonly instance: string;
  /** What the node works, in every beat: its queue and task types (see TaskStore.unhandled). */
  readonly works?: { readonly queue: string; readonly types: readonly string[] };
  /** Another process wrote this node's row since this one's last beat. */
  conflict(other: PreviousBeat): void;
}

/**
 * The watchdog's heartbeat port over the store's `health_check` table, for
 * one group. Each beat carries this process's instance, and a row that
 * another instance wrote between two of this process's beats is reported:
 * two live processes share one node id.
 */
export function heartbeatPort(
  nodes: NodeStore,
  groupId: string,
  self: BeatIdentity,
): HeartbeatPort {
  let beaten = false;
  return {
    beat: async (nodeId, info) => {
      const prev = await nodes.beat(nodeId, groupId, {
        ...info,
        ...(self.works ? { queue: self.works.queue, types: [...self.works.types] } : {}),
        instance: self.instance,
      });
      // The first beat may replace the row of a process that has just ended.
      if (beaten && prev?.instance != null && prev.instance !== self.instance) self.conflict(prev);
      beaten = true;
    },
    members: async () =>
      (await nodes.members(groupId)).map((m) => ({
        nodeId: m.nodeId,
        heartbeatAgeMs: m.heartbeatAgeMs,
      })),
    leave: (nodeId) => nodes.leave(nodeId, groupId),
    prune: (olderThanMs) => nodes.prune(groupId, olderThanMs),
  };
}

/** The actors' logger (message, fields) over pino (fields, message). */
export function actorLogger(logger: PinoLogger): ActorLogger {
  return {
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
    error: (message, fields) => logger.error(fields ?? {}, message),
  };
}
