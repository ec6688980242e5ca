// The public API of the chorus package: the client library, configuration, the member, the wire codec.

// Services on the actor runtime: define a service, host it in a member, talk to it from a client.
export {
  type ActorBehaviour,
  type ActorInput,
  type BehaviourContext,
  CommandError,
  defineService,
  EFFECT_DONE_EVENT,
  type EventOrigin,
  type EventsOf,
  effect,
  emitFor,
  reply,
  type Service,
  tell,
  update,
} from './actors/actor-runtime/service.ts';
export { EntryKind, type LogEntry } from './actors/log/log-entry.ts';
export { defineOrdersService, type OrdersService } from './actors/order-book/service.ts';
export { decodeKvCommand, encodeKvCommand, type KvCommand, type KvResult } from './actors/services/kv.ts';
export {
  ActorServiceHost,
  type ActorServiceHostOptions,
} from './runtime/actor-runtime/actor-service-host.ts';
export {
  decodeServiceReply,
  ServiceReplyError,
  serviceClient,
} from './runtime/actor-runtime/service-client.ts';
export {
  type EffectContext,
  loadServicesModule,
  type PerformEffect,
} from './runtime/actor-runtime/services-module.ts';
export {
  ChorusClient,
  type ClientOptions,
  CommandTimeoutError,
  OutcomeUnknownError,
  SessionClosedError,
} from './runtime/client/client.ts';
export {
  type ClusterConfig,
  ConfigError,
  loadClusterConfig,
  type MemberConfig,
  parseMembersString,
  resolveClusterConfig,
  validateClusterConfig,
} from './runtime/config.ts';
export { LocalCluster } from './runtime/local-cluster.ts';
export { Member, type MemberOptions, type MemberStatus } from './runtime/member.ts';
export type { ServiceHost } from './runtime/service-host.ts';
export {
  encodeFrame,
  type Frame,
  FrameDecoder,
  FrameError,
  PROTOCOL_VERSION,
} from './runtime/wire/frame-codec.ts';
