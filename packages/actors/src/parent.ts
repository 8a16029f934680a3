import { enqueueActions, type AnyActorRef, type EventObject } from 'xstate';

/** The children of a node's supervisor. */
export type ChildName = 'watchdog' | 'worker' | 'scheduler';

/** A child tells its parent that it is up (the supervisor starts children in order). */
export interface ChildReadyEvent {
  readonly type: 'CHILD.READY';
  readonly child: ChildName;
}

/**
 * An action that sends the actor's parent, if it has one, the event `make`
 * returns (undefined: nothing to send). `make` may log on the way; it is
 * called once per transition.
 *
 * A built-in `sendParent`, not a function calling `_parent.send`: the parent
 * then takes the event after this step, with this actor's new snapshot in
 * place, not inside this actor's action (where XState's development build
 * warns about every `assign` the parent makes).
 */
export function toParent<C, P = undefined>(
  make: (context: C, params: P) => EventObject | undefined,
): (args: { context: C; self: AnyActorRef }, params: P) => void {
  const action = enqueueActions(({ context, self, enqueue }, params: P) => {
    const event = make(context as C, params);
    if (event && self._parent) enqueue.sendParent(event);
  });
  // Typed as the plain action it stands for, so that it fits any machine's
  // setup: XState runs it by its own resolve, whatever the declared type.
  return action as unknown as (args: { context: C; self: AnyActorRef }, params: P) => void;
}

/**
 * An action that tells the actor's parent `child` is ready, when it has a
 * parent: a machine run on its own (in a test, or by another runtime) has
 * none, and that is fine.
 */
export const notifyReady = (child: ChildName) =>
  toParent<unknown>(() => ({ type: 'CHILD.READY', child }) satisfies ChildReadyEvent);
