/**
 * Subjects of one group. Every subject of a group lives under the prefix
 * `baton.<group>`, so one group never hears another and an operator can
 * grant a group's nodes `baton.<group>.>` and nothing else.
 *
 * | subject                              | carries                                       |
 * | ------------------------------------ | --------------------------------------------- |
 * | `baton.<group>.hb.<node>`            | heartbeats of one node                        |
 * | `baton.<group>.dispatch.<queue>`     | wake-ups: tasks are ready in this queue       |
 * | `baton.<group>.submit.<type>`        | task submissions (type may contain dots)      |
 * | `baton.<group>.js.submit.<type>`     | the same, captured by the JetStream stream    |
 * | `baton.<group>.status`               | status request answered by every node         |
 * | `baton.<group>.status.<node>`        | status request answered by one node           |
 * | `baton.<group>.cancel`               | cancellation requests                         |
 * | `baton.<group>.events.task.<status>` | task lifecycle events                         |
 */
import { InvalidArgumentError, QUEUE_NAME, TYPE_NAME } from '@baton/store';

/** The root token of every Baton subject. */
export const SUBJECT_ROOT = 'baton';

/** One subject token of a group or node id: letters, digits, `_` and `-`. */
const TOKEN = /^[A-Za-z0-9_-]+$/;
const MAX_TOKEN = 128;
const MAX_TYPE = 128;

function token(field: string, value: unknown, pattern: RegExp = TOKEN, max = MAX_TOKEN): string {
  if (typeof value !== 'string') {
    throw new InvalidArgumentError(field, `must be a string, got ${typeof value}`, value);
  }
  if (value.length === 0 || value.length > max) {
    throw new InvalidArgumentError(field, `must be 1 to ${max} characters long`, value);
  }
  if (!pattern.test(value)) {
    throw new InvalidArgumentError(
      field,
      pattern === TYPE_NAME
        ? 'must be dot-separated tokens of letters, digits, "_" and "-", starting with a letter'
        : 'must be one subject token of letters, digits, "_" and "-" (no dots, spaces or wildcards)',
      value,
    );
  }
  return value;
}

/** Validates a group id as a subject token; throws {@link InvalidArgumentError} naming `field`. */
export function validateGroup(group: unknown, field = 'group'): string {
  return token(field, group);
}

/** Validates a node id (the Ballerina `taskId`) as a subject token. */
export function validateNode(node: unknown, field = 'node'): string {
  return token(field, node);
}

/** The subjects of one group, built once and frozen. Build it with {@link groupSubjects}. */
export interface GroupSubjects {
  readonly group: string;
  /** `baton.<group>` */
  readonly prefix: string;
  /** `baton.<group>.hb.<node>` */
  heartbeat(node: string): string;
  /** `baton.<group>.hb.*`: every node's heartbeats. */
  readonly heartbeats: string;
  /** `baton.<group>.dispatch.<queue>` */
  dispatch(queue: string): string;
  /** `baton.<group>.dispatch.*`: wake-ups of every queue. */
  readonly dispatchAll: string;
  /** `baton.<group>.submit.<type>`; the type may contain dots. */
  submit(type: string): string;
  /** `baton.<group>.submit.>`: submissions of every type. */
  readonly submitAll: string;
  /** `baton.<group>.js.submit.<type>`: the JetStream submission subject. */
  jsSubmit(type: string): string;
  /** `baton.<group>.js.submit.>`: the subjects the JetStream stream captures. */
  readonly jsSubmitAll: string;
  /** `baton.<group>.status`: every node answers. */
  readonly status: string;
  /** `baton.<group>.status.<node>`: only that node answers. */
  statusOf(node: string): string;
  /** `baton.<group>.cancel` */
  readonly cancel: string;
  /** `baton.<group>.events.task.<status>` */
  taskEvent(status: string): string;
  /** `baton.<group>.events.task.*` */
  readonly taskEvents: string;
  /**
   * The task type of a `submit.<type>` or `js.submit.<type>` subject of this
   * group, or `undefined` when `subject` is neither.
   */
  typeOf(subject: string): string | undefined;
  /** The node of a `hb.<node>` subject of this group, or `undefined`. */
  nodeOf(subject: string): string | undefined;
}

/**
 * Builds the subjects of `group`. Throws {@link InvalidArgumentError} (code
 * `INVALID_ARGUMENT`, `fields.field` = `group`, `node`, `queue`, `type` or
 * `status`) when a token is not a valid subject token.
 *
 * @example
 * const s = groupSubjects('orders');
 * s.submit('email.send'); // 'baton.orders.submit.email.send'
 * s.typeOf('baton.orders.submit.email.send'); // 'email.send'
 */
export function groupSubjects(group: string): GroupSubjects {
  validateGroup(group);
  const prefix = `${SUBJECT_ROOT}.${group}`;
  const submitPrefix = `${prefix}.submit.`;
  const jsSubmitPrefix = `${prefix}.js.submit.`;
  const hbPrefix = `${prefix}.hb.`;
  const after = (subject: string, head: string): string | undefined =>
    subject.startsWith(head) ? subject.slice(head.length) : undefined;
  return Object.freeze({
    group,
    prefix,
    heartbeat: (node: string) => `${hbPrefix}${validateNode(node)}`,
    heartbeats: `${hbPrefix}*`,
    dispatch: (queue: string) => `${prefix}.dispatch.${token('queue', queue, QUEUE_NAME)}`,
    dispatchAll: `${prefix}.dispatch.*`,
    submit: (type: string) => `${submitPrefix}${token('type', type, TYPE_NAME, MAX_TYPE)}`,
    submitAll: `${submitPrefix}>`,
    jsSubmit: (type: string) => `${jsSubmitPrefix}${token('type', type, TYPE_NAME, MAX_TYPE)}`,
    jsSubmitAll: `${jsSubmitPrefix}>`,
    status: `${prefix}.status`,
    statusOf: (node: string) => `${prefix}.status.${validateNode(node)}`,
    cancel: `${prefix}.cancel`,
    taskEvent: (status: string) => `${prefix}.events.task.${token('status', status)}`,
    taskEvents: `${prefix}.events.task.*`,
    typeOf: (subject: string) => {
      const type = after(subject, submitPrefix) ?? after(subject, jsSubmitPrefix);
      return type !== undefined && type.length > 0 ? type : undefined;
    },
    nodeOf: (subject: string) => {
      const node = after(subject, hbPrefix);
      return node !== undefined && TOKEN.test(node) ? node : undefined;
    },
  });
}
