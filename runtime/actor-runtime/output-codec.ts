// Shard outputs cross the worker boundary as msgpack tuples, not maps: no key strings to write or read,
// about a quarter of the bytes, and decoding a reply costs ~0.07 µs instead of ~0.5 µs on the main
// thread (which every shard's outputs funnel through). Decoding rebuilds exactly the objects the
// in-process shard produces (same fields, same order).

import {
  pack,
  type ReplyError,
  replyOutput,
  type ShardOutput,
  unpack,
} from '../../actors/actor-runtime/protocol.ts';

const REPLY = 0;
const TIMER_SCHEDULE = 1;
const TIMER_CANCEL = 2;
const SEND = 3;
const EFFECT = 4;
const SNAPSHOT = 5;
const NOTIFY = 6;

const toTuple = (o: ShardOutput): unknown[] => {
  switch (o.type) {
    case 'REPLY':
      return [REPLY, o.index, o.sessionId, o.correlationId, o.ok, o.value, o.error ?? null, o.duplicate];
    case 'TIMER_SCHEDULE':
      return [TIMER_SCHEDULE, o.index, o.timerId, o.deadline, o.payload];
    case 'TIMER_CANCEL':
      return [TIMER_CANCEL, o.index, o.timerId];
    case 'SEND':
      return [SEND, o.index, o.messageId, o.payload];
    case 'EFFECT':
      return [EFFECT, o.index, o.effectId, o.address, o.seq, o.intent];
    case 'SNAPSHOT':
      return [SNAPSHOT, o.index, o.shard, o.bytes];
    case 'NOTIFY':
      return [NOTIFY, o.index, o.sessionId, o.message];
  }
};

export const encodeOutputs = (outputs: readonly ShardOutput[]): Uint8Array => pack(outputs.map(toTuple));

export const decodeOutputs = (bytes: Uint8Array): ShardOutput[] => {
  const tuples = unpack(bytes) as unknown[][];
  const outputs: ShardOutput[] = new Array(tuples.length);
  for (let i = 0; i < tuples.length; i++) {
    const t = tuples[i] as [number, number, ...unknown[]];
    const index = t[1];
    switch (t[0]) {
      case REPLY:
        outputs[i] = replyOutput(
          index,
          t[2] as number,
          t[3] as number,
          t[4] as boolean,
          t[5],
          (t[6] as ReplyError | null) ?? undefined,
          t[7] as boolean,
        );
        break;
      case TIMER_SCHEDULE:
        outputs[i] = {
          type: 'TIMER_SCHEDULE',
          index,
          timerId: t[2] as string,
          deadline: t[3] as number,
          payload: t[4] as Uint8Array,
        };
        break;
      case TIMER_CANCEL:
        outputs[i] = { type: 'TIMER_CANCEL', index, timerId: t[2] as string };
        break;
      case SEND:
        outputs[i] = { type: 'SEND', index, messageId: t[2] as string, payload: t[3] as Uint8Array };
        break;
      case EFFECT:
        outputs[i] = {
          type: 'EFFECT',
          index,
          effectId: t[2] as string,
          address: t[3] as string,
          seq: t[4] as number,
          intent: t[5],
        };
        break;
      case SNAPSHOT:
        outputs[i] = { type: 'SNAPSHOT', index, shard: t[2] as number, bytes: t[3] as Uint8Array };
        break;
      case NOTIFY:
        outputs[i] = { type: 'NOTIFY', index, sessionId: t[2] as number, message: t[3] };
        break;
      default:
        throw new Error(
          `decodeOutputs: unknown output tag ${String(t[0])} (worker and main thread builds differ?)`,
        );
    }
  }
  return outputs;
};
