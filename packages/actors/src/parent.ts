import { enqueueActions, type AnyActorRef } from 'xstate';

/** The children of a node's supervisor. */
export type ChildName = 'watchdog' | 'worker' | 'scheduler';

/** A child tells its parent that it is up (the supervisor starts children in order). */
export interface ChildReadyEvent {
  readonly type: 'CHILD.READY';
  readonly child: ChildName;
}

/**
 * An action that tells the actor's parent `child` is ready, when it has a
 * parent: a machine run on its own (in a test, or by another runtime) has
 * none, and that is fine.
 *
 * A built-in `sendParent`, not a function calling `_parent.send`: the parent
 * then takes the event after this step, not inside this actor's action (where
 * XState's development build warns about every `assign` the parent makes).
 */
export function notifyReady(child: ChildName): (args: { self: AnyActorRef }) => void {
  const action = enqueueActions(({ self, enqueue }) => {
    if (self._parent) enqueue.sendParent({ type: 'CHILD.READY', child } satisfies ChildReadyEvent);
  });
  // Typed as the plain action it stands for, so that it fits any machine's
  // setup: XState runs it by its own resolve, whatever the declared type.
  return action as unknown as (args: { self: AnyActorRef }) => void;
}
