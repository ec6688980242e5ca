// The consensus core's public surface: a pure ConsensusNode (inputs in, effects out) and its types.
// A shell — a real member (runtime/) or the simulator (runtime/sim) — owns the clock, network, disk
// and services, feeds the node inputs and carries out its effects in order.

export { ConsensusNode } from './node.ts';
export { decodeSessionMessage, encodeSessionMessage, type SessionMessage } from './session-message.ts';
export * from './types.ts';
