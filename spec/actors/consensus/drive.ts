// Driving one ConsensusNode input by input in the node specs: completions answered at once, and the
// leader's APPEND and the follower's acknowledgements as the specs build and read them.

import type { ConsensusNode } from '../../../actors/consensus/node.ts';
import type { ConsensusEffect, ConsensusInput } from '../../../actors/consensus/types.ts';
import { EntryKind, type LogEntry } from '../../../actors/log/log-entry.ts';

/** A log entry of `kind` (a session message by default) whose payload names its index and term. */
export const entry = (index: number, term: number, kind: number = EntryKind.SESSION_MESSAGE): LogEntry => ({
  index,
  term,
  timestamp: 0,
  kind: kind as LogEntry['kind'],
  payload: new Uint8Array([index, term]),
});

/** Feed inputs, answering every SAVE_NODE_STATE and APPEND at once; returns all effects, in order. */
export const run = (node: ConsensusNode, ...inputs: ConsensusInput[]): ConsensusEffect[] => {
  const all: ConsensusEffect[] = [];
  const queue = [...inputs];
  while (queue.length > 0) {
    const effects = node.handle(queue.shift() as ConsensusInput);
    all.push(...effects);
    for (const e of effects) {
      if (e.type === 'SAVE_NODE_STATE') queue.push({ type: 'NODE_STATE_SAVED', seq: e.seq });
      if (e.type === 'APPEND') queue.push({ type: 'APPENDED', seq: e.seq });
    }
  }
  return all;
};

/** A leader's APPEND of `list` after (prevIndex, prevTerm), with the leader's last index just past it. */
export const append = (
  term: number,
  prevIndex: number,
  prevTerm: number,
  list: LogEntry[],
  commitIndex: number,
) =>
  ({
    type: 'APPEND',
    term,
    prevIndex,
    prevTerm,
    entries: list,
    commitIndex,
    leaderLastIndex: prevIndex + list.length,
  }) as const;

/** The match index of each successful APPEND_RESPONSE among `effects`. */
export const acks = (effects: ConsensusEffect[]): number[] =>
  effects.flatMap((e) =>
    e.type === 'SEND' && e.message.type === 'APPEND_RESPONSE' && e.message.success
      ? [e.message.matchIndex]
      : [],
  );
