// The consensus core's public surface: a pure ConsensusNode (inputs in, effects out) and its types.
// A shell — a real member (runtime/) or the simulator (runtime/sim) — owns the clock, network, disk
// and services, feeds the node inputs and carries out its effects in order.

export { decodeSessionMessage, encodeSessionMessage, type SessionMessage } from '../log/session-message.ts';
export { ConsensusNode } from './node.ts';
export * from './types.ts';
