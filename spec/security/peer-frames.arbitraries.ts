// fast-check arbitraries for the peer edge: a valid consensus message of every kind (as the wire carries
// it: APPEND's entries flat), and a mutation of one that makes it invalid in exactly one way.

import fc from 'fast-check';
import { pack, unpack } from 'msgpackr';
import { EntryKind } from '../../actors/log/log-entry.ts';
import { MAX_WIRE_INTEGER } from '../../runtime/wire/peer-frames.ts';

type Wire = Record<string, unknown>;

const count = fc.integer({ min: 0, max: 10_000 });
const term = fc.integer({ min: 1, max: 10_000 });
const kinds = Object.values(EntryKind);

/** A valid APPEND on the wire: contiguous entries after prevIndex, terms non-decreasing up to `term`. */
const append = fc
  .record({
    term,
    prevIndex: count,
    payloads: fc.array(fc.uint8Array({ maxLength: 32 }), { maxLength: 6 }),
    kinds: fc.array(fc.constantFrom(...kinds), { minLength: 6, maxLength: 6 }),
    commitSlack: count,
    lastSlack: count,
  })
  .map(({ term, prevIndex, payloads, kinds, commitSlack, lastSlack }): Wire => {
    const leaderLastIndex = prevIndex + payloads.length + lastSlack;
    const entries = payloads.flatMap((payload, i) => [
      prevIndex + 1 + i,
      term,
      1_700_000_000_000 + i,
      kinds[i],
      payload,
    ]);
    return {
      type: 'APPEND',
      term,
      prevIndex,
      prevTerm: Math.max(0, term - 1),
      entries,
      commitIndex: Math.max(0, leaderLastIndex - commitSlack),
      leaderLastIndex,
    };
  });

const snapshotData = fc
  .record({
    module: fc.option(fc.dictionary(fc.string(), fc.integer())),
    service: fc.option(fc.uint8Array()),
  })
  .map(({ module, service }) => pack({ module: module === null ? null : pack(module), service }));

/** A valid consensus message of any kind, as the wire carries it. */
export const validWireMessage: fc.Arbitrary<Wire> = fc.oneof(
  fc.record({ type: fc.constant('VOTE'), term: count, granted: fc.boolean() }),
  fc.record({ type: fc.constant('TIMEOUT_NOW'), term: count }),
  term.chain((t) =>
    fc.record({
      type: fc.constant('CANVASS_POSITION'),
      term: fc.constant(t),
      logTerm: fc.integer({ min: 0, max: t }),
      logIndex: count,
      reply: fc.boolean(),
      round: count,
    }),
  ),
  term.chain((t) =>
    fc.record({
      type: fc.constant('REQUEST_VOTE'),
      term: fc.constant(t),
      logTerm: fc.integer({ min: 0, max: t }),
      logIndex: count,
      transfer: fc.boolean(),
    }),
  ),
  fc.record({
    type: fc.constant('APPEND_RESPONSE'),
    term: count,
    success: fc.boolean(),
    matchIndex: count,
    rejectedIndex: count,
    hintIndex: count,
    hintTerm: count,
  }),
  term.chain((t) =>
    fc.record({
      type: fc.constant('INSTALL_SNAPSHOT'),
      term: fc.constant(t),
      index: term,
      snapshotTerm: fc.integer({ min: 0, max: t }),
      data: snapshotData,
    }),
  ),
  append,
);

/** Values no count field (term, index, timestamp) may take. */
const badCount = fc.constantFrom<unknown>(
  -1,
  11.5,
  Number.MAX_SAFE_INTEGER,
  MAX_WIRE_INTEGER + 1,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  '3',
  null,
  undefined,
  true,
  {},
  [],
  new Uint8Array(2),
);
const badBoolean = fc.constantFrom<unknown>(0, 1, 'true', null, undefined, {});

const COUNT_FIELDS: Record<string, readonly string[]> = {
  VOTE: ['term'],
  TIMEOUT_NOW: ['term'],
  CANVASS_POSITION: ['term', 'logTerm', 'logIndex', 'round'],
  REQUEST_VOTE: ['term', 'logTerm', 'logIndex'],
  APPEND_RESPONSE: ['term', 'matchIndex', 'rejectedIndex', 'hintIndex', 'hintTerm'],
  INSTALL_SNAPSHOT: ['term', 'index', 'snapshotTerm'],
  APPEND: ['term', 'prevIndex', 'prevTerm', 'commitIndex', 'leaderLastIndex'],
};
const BOOLEAN_FIELDS: Record<string, readonly string[]> = {
  VOTE: ['granted'],
  CANVASS_POSITION: ['reply'],
  REQUEST_VOTE: ['transfer'],
  APPEND_RESPONSE: ['success'],
};

/** One way to break a valid message; each result must be refused. */
export const mutation = (message: Wire): fc.Arbitrary<{ how: string; message: Wire }> => {
  const type = message.type as string;
  const options: fc.Arbitrary<{ how: string; message: Wire }>[] = [
    fc.tuple(fc.constantFrom(...COUNT_FIELDS[type]), badCount).map(([field, value]) => ({
      how: `${field} = ${String(value)}`,
      message: { ...message, [field]: value },
    })),
    fc
      .constantFrom<unknown>('BALLOT', 'append', '', 7, null, undefined)
      .map((value) => ({ how: `type = ${String(value)}`, message: { ...message, type: value } })),
  ];
  const booleans = BOOLEAN_FIELDS[type];
  if (booleans) {
    options.push(
      fc.tuple(fc.constantFrom(...booleans), badBoolean).map(([field, value]) => ({
        how: `${field} = ${String(value)}`,
        message: { ...message, [field]: value },
      })),
    );
  }
  if (type === 'INSTALL_SNAPSHOT') {
    options.push(
      fc
        .oneof(
          fc.uint8Array({ minLength: 1, maxLength: 64 }).filter((bytes) => !isSnapshotImage(bytes)),
          fc.constant(pack({ module: 'x', service: null })),
          fc.constant(pack({ module: Uint8Array.of(0xd9, 0x10, 0x61), service: null })),
          fc.constant(pack({ module: pack(5), service: null })),
          fc.constant(pack([1, 2])),
          fc.constant('not bytes'),
        )
        .map((data) => ({ how: 'garbage snapshot data', message: { ...message, data } })),
    );
  }
  if (type === 'APPEND') options.push(appendMutation(message));
  return fc.oneof(...options);
};

/** Whether random bytes happen to decode to a { module, service } map (almost never; such are skipped). */
const isSnapshotImage = (bytes: Uint8Array): boolean => {
  try {
    const value = unpack(bytes) as Record<string, unknown> | null;
    return typeof value === 'object' && value !== null && ('module' in value || 'service' in value);
  } catch {
    return false;
  }
};

/** Break an APPEND's entries: a gap, a bad kind, a term going down or past the message's, a bad payload. */
const appendMutation = (message: Wire): fc.Arbitrary<{ how: string; message: Wire }> => {
  const entries = message.entries as unknown[];
  const term = message.term as number;
  const prevIndex = message.prevIndex as number;
  const withEntry = (how: string, at: number, value: unknown) => {
    const copy = [...entries];
    copy[at] = value;
    return { how, message: { ...message, entries: copy } };
  };
  const broken: fc.Arbitrary<{ how: string; message: Wire }>[] = [
    fc.constant({ how: 'entries not a flat array of 5', message: { ...message, entries: [...entries, 1] } }),
    fc.constant({ how: 'entries not an array', message: { ...message, entries: { 0: 1 } } }),
    fc.constant({
      how: 'an entry past leaderLastIndex',
      message: { ...message, leaderLastIndex: prevIndex + entries.length / 5 - 1 },
    }),
    fc.constant({
      how: 'commitIndex past leaderLastIndex',
      message: { ...message, commitIndex: (message.leaderLastIndex as number) + 1 },
    }),
  ];
  if (entries.length > 0) {
    const n = entries.length / 5;
    broken.push(
      fc.integer({ min: 0, max: n - 1 }).chain((i) =>
        fc.oneof(
          fc
            .constantFrom(2, 7, 1000)
            .map((gap) => withEntry(`gap of ${gap} at entry ${i}`, i * 5, prevIndex + 1 + i + gap)),
          fc
            .constantFrom<unknown>(0, 9, 255, -1, 3.5, 'SESSION_MESSAGE', null)
            .map((kind) => withEntry(`kind ${String(kind)} at entry ${i}`, i * 5 + 3, kind)),
          fc
            .constantFrom(term + 1, Number.MAX_SAFE_INTEGER)
            .map((t) => withEntry(`entry term ${t}`, i * 5 + 1, t)),
          badCount.map((value) => withEntry(`timestamp ${String(value)}`, i * 5 + 2, value)),
          fc
            .constantFrom<unknown>('payload', null, [1, 2], 5)
            .map((p) => withEntry('payload not bytes', i * 5 + 4, p)),
        ),
      ),
    );
  }
  return fc.oneof(...broken);
};
