/**
 * The hint router: the supervisor's bus subscriptions. It turns dispatch,
 * heartbeat and cancel messages into events (WAKE, HEARTBEAT_RECEIVED,
 * CANCEL), and malformed ones into HINT.INVALID: bad input never throws.
 */
import { fromCallback } from 'xstate';
import type { BusPayload, BusPort, HeartbeatMessage, Subjects } from './ports.js';

/** The events the router sends to the supervisor. */
export type HintEvent =
  | { type: 'WAKE'; queue?: string }
  | { type: 'CANCEL'; taskId: string }
  | { type: 'HEARTBEAT_RECEIVED'; message: HeartbeatMessage }
  | { type: 'HINT.INVALID'; subject: string; reason: string };

const TASK_ID = /^[1-9][0-9]{0,18}$/;

function parseHeartbeat(m: BusPayload): HeartbeatMessage | string {
  const { nodeId, seq, state, inFlight, concurrency, role, term, released } = m;
  if (typeof nodeId !== 'string' || nodeId.length === 0) return 'nodeId must be a non-empty string';
  if (typeof seq !== 'number') return 'seq must be a number';
  if (state !== 'alive' && state !== 'leaving') return "state must be 'alive' or 'leaving'";
  if (typeof inFlight !== 'number' || typeof concurrency !== 'number')
    return 'inFlight and concurrency must be numbers';
  const message: HeartbeatMessage = { nodeId, seq, state, inFlight, concurrency };
  // Optional election fields: kept when well-formed, ignored otherwise (hints).
  const known = role === 'bearer' || role === 'standby' || role === 'candidate';
  return {
    ...message,
    ...(known ? { role } : {}),
    ...(typeof term === 'number' && Number.isInteger(term) ? { term } : {}),
    ...(typeof released === 'number' && Number.isInteger(released) ? { released } : {}),
  };
}

/** Subscribes to the hints of this node and turns them into events; malformed ones are reported, never thrown. */
export const hintRouter = fromCallback<
  HintEvent,
  { bus: BusPort; subjects: Subjects; queue: string }
>(({ input, sendBack }) => {
  const { bus, subjects, queue } = input;
  const invalid = (subject: string, reason: string) =>
    sendBack({ type: 'HINT.INVALID', subject, reason });
  const offs = [
    bus.subscribe(subjects.dispatch(queue), () => sendBack({ type: 'WAKE', queue })),
    bus.subscribe(subjects.heartbeats, (m, subject) => {
      const hb = parseHeartbeat(m);
      if (typeof hb === 'string') invalid(subject, hb);
      else sendBack({ type: 'HEARTBEAT_RECEIVED', message: hb });
    }),
    bus.subscribe(subjects.cancel, (m, subject) => {
      if (typeof m.taskId === 'string' && TASK_ID.test(m.taskId))
        sendBack({ type: 'CANCEL', taskId: m.taskId });
      else invalid(subject, 'taskId must be a task id (a positive integer as a string)');
    }),
  ];
  return () => {
    for (const off of offs) void Promise.resolve(off()).catch(() => undefined);
  };
});
