/**
 * The bus layer: the port, its NATS and PostgreSQL adapters, subjects, codec and the
 * JetStream submission helpers. Re-exported by the package's `src/index.ts`.
 */
export type {
  Bus,
  BusEvent,
  BusEventListener,
  BusHandler,
  BusKind,
  BusMessage,
  BusStatus,
  BusSubscription,
  RequestManyOptions,
  RequestOptions,
  SubscribeOptions,
} from './bus.js';
export { BusError, CodecError, type BusErrorCode } from './errors.js';
export {
  SUBJECT_ROOT,
  groupSubjects,
  validateGroup,
  validateNode,
  type GroupSubjects,
} from './subjects.js';
export {
  DEFAULT_MAX_SUBMISSION_BYTES,
  decodeMessage,
  decodeSubmission,
  detectEncoding,
  encodeAs,
  encodeMessage,
  type DecodeSubmissionOptions,
  type DecodedSubmission,
  type Encoding,
} from './codec.js';
export { NatsBus, createNatsBus } from './nats.bus.js';
export {
  compileNatsBusOptions,
  type CompiledNatsBusOptions,
  type NatsBusOptions,
  type NatsTlsOptions,
} from './nats.options.js';
export {
  MSG_ID_HEADER,
  SUBMIT_CONSUMER,
  ensureSubmitConsumer,
  ensureSubmitStream,
  publishSubmission,
  submitStreamName,
  type StreamAck,
  type SubmitConsumerOptions,
  type SubmitStreamOptions,
} from './jetstream.js';
export {
  consumeStream,
  isPermanentSubmissionError,
  type ConsumeStreamOptions,
  type StreamCallback,
  type StreamConsumer,
  type StreamDelivery,
} from './jetstream.consume.js';
export { PostgresBus, createPostgresBus } from './postgres.bus.js';
export {
  compilePostgresBusOptions,
  MAX_APPLICATION_NAME,
  MAX_CHANNEL_PREFIX,
  type CompiledPostgresBusOptions,
  type PostgresBusOptions,
} from './postgres.options.js';
export {
  ChannelNames,
  MAX_QUEUE_LENGTH,
  MAX_SUBJECT_LENGTH,
  parsePublishSubject,
  parseSubscribeSubject,
  subjectMatches,
  validateQueueGroup,
  type ParsedSubject,
} from './postgres.channels.js';
