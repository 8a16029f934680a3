import type { AnyActorRef } from 'xstate';

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
 */
export function notifyReady(child: ChildName) {
  return ({ self }: { self: AnyActorRef }): void => {
    self._parent?.send({ type: 'CHILD.READY', child } satisfies ChildReadyEvent);
  };
}
