/**
 * Adapters from the runtime's parts to the actors' ports: the bus (with the
 * codec), the heartbeat table, and the logger.
 */
import type { BusPayload, BusPort, HeartbeatPort, Logger as ActorLogger } from '@baton/actors';
import type { Logger as PinoLogger } from 'pino';
import type { NodeStore } from '@baton/store';
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

/** The watchdog's heartbeat port over the store's `health_check` table, for one group. */
export function heartbeatPort(nodes: NodeStore, groupId: string): HeartbeatPort {
  return {
    beat: (nodeId, info) => nodes.beat(nodeId, groupId, { ...info }),
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
