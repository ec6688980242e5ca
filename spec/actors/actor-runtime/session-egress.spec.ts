// Session egress in the pure shards: an actor's `notify` becomes a NOTIFY output only when its transition
// is kept, and a SESSION_CLOSE entry delivers each service's `sessionClosed` events to the actors that own
// them — the same states whatever the shard count, and again in a replay from a snapshot.

import { expect } from 'chai';
import type { ShardOutput } from '../../../actors/actor-runtime/protocol.ts';
import { ShardSet } from '../../../actors/actor-runtime/shard-set.ts';
import { EntryKind, type LogEntry } from '../../../actors/log/log-entry.ts';
import { encodeSessionClose } from '../../../actors/sessions/payloads.ts';
import { serviceReplies } from '../../../runtime/actor-runtime/actor-service-host.ts';
import { decodeOutputs, encodeOutputs } from '../../../runtime/actor-runtime/output-codec.ts';
import { bellService, CHANNELS } from './bell-service.ts';
import { LogBuilder } from './fixtures.ts';

const options = { services: [bellService] };

/** Log entries of bell commands and session closes. */
class BellLog extends LogBuilder {
  private correlation = 0;
  bell(sessionId: number, command: unknown): LogEntry {
    this.correlation++;
    return this.raw(
      EntryKind.SESSION_MESSAGE,
      bellService.commandPayload(command, sessionId, this.correlation, this.correlation),
    );
  }
  close(sessionId: number): LogEntry {
    return this.raw(EntryKind.SESSION_CLOSE, encodeSessionClose({ sessionId, reason: 'TIMEOUT' }));
  }
}

const notifications = (outputs: readonly ShardOutput[]) =>
  outputs.flatMap((o) => (o.type === 'NOTIFY' ? [[o.index, o.sessionId, o.message]] : []));

const states = (set: ShardSet) =>
  CHANNELS.map((channel) => (set.actorState(`bells/bell/${channel}`) as { context?: unknown })?.context);

describe('session egress in the shards (notify, sessionClosed)', () => {
  const log = new BellLog();
  log.bell(11, { type: 'SUBSCRIBE', channel: 'a' });
  log.bell(12, { type: 'SUBSCRIBE', channel: 'a' });
  log.bell(11, { type: 'SUBSCRIBE', channel: 'c' });
  const ring1 = log.bell(13, { type: 'RING', channel: 'a', text: 'one' });
  const thrown = log.bell(13, { type: 'RING_THEN_THROW', channel: 'a' });
  const close11 = log.close(11);
  const ring2 = log.bell(13, { type: 'RING', channel: 'a', text: 'two' });
  log.bell(12, { type: 'SUBSCRIBE', channel: 'c' });
  log.close(12);
  const ring3 = log.bell(13, { type: 'RING', channel: 'c', text: 'three' });

  it('notify: a NOTIFY per subscriber for a kept transition, none for a throwing one; the member sends them as notifications', () => {
    const outputs = new ShardSet(3, options).apply(log.entries);
    expect(notifications(outputs)).to.deep.equal([
      [ring1.index, 11, { type: 'RING', text: 'one', ring: 1 }],
      [ring1.index, 12, { type: 'RING', text: 'one', ring: 1 }],
      [ring2.index, 12, { type: 'RING', text: 'two', ring: 2 }],
    ]);
    const failed = outputs.find((o) => o.type === 'REPLY' && o.index === thrown.index);
    expect(failed).to.include({ ok: false });
    expect(ring3.index, 'the last ring reached nobody: both sessions closed').to.be.above(0);
    // Across the worker boundary the outputs decode to the same objects.
    expect(decodeOutputs(encodeOutputs(outputs))).to.deep.equal(outputs);
    const pushed = serviceReplies(outputs).filter((r) => r.notify);
    expect(pushed.map((r) => [r.sessionId, r.correlationId])).to.deep.equal([
      [11, 0],
      [12, 0],
      [12, 0],
    ]);
  });

  it('sessionClosed: every channel is told each close, in log order, with origin { sessionClosed }; the same with 1 or 3 shards', () => {
    const one = new ShardSet(1, options);
    const three = new ShardSet(3, options);
    one.apply(log.entries);
    three.apply(log.entries);
    expect(states(three)).to.deep.equal(states(one));
    const [a, b, , d] = states(one) as { subscribers: number[]; closes: [number, boolean][] }[];
    expect(a.subscribers).to.deep.equal([]);
    expect(a.closes).to.deep.equal([
      [11, true],
      [12, true],
    ]);
    expect(b.closes, 'a channel nobody subscribed to is told too').to.deep.equal([
      [11, false],
      [12, false],
    ]);
    expect(d.closes).to.deep.equal(b.closes);
    // The close reached the actors on whichever shard holds them: more than one shard was involved.
    const shardsWithBells = three.shards.filter((s) => s.actorCount > 0).length;
    expect(shardsWithBells, 'bells spread over the shards').to.be.above(1);
    // ...and only there: no shard made a copy of an actor it does not own.
    const held = three.shards.reduce((sum, s) => sum + s.actorCount, 0);
    expect(held, 'actors held in all').to.equal(CHANNELS.length);
  });

  it('replay: restored from a snapshot taken before the first close, the rest of the log gives the same states and notifications', () => {
    const live = new ShardSet(3, options);
    const liveOutputs = live.apply(log.entries);
    const before = new ShardSet(2, options);
    before.apply(log.entries.filter((e) => e.index < close11.index));
    const restored = ShardSet.restore(before.snapshot(), 3, options);
    const replayed = restored.apply(log.entries.filter((e) => e.index >= close11.index));
    expect(states(restored)).to.deep.equal(states(live));
    expect(notifications(replayed)).to.deep.equal(
      notifications(liveOutputs).filter(([index]) => (index as number) >= close11.index),
    );
    // Replaying entries already applied changes nothing and tells no one again.
    expect(notifications(restored.apply(log.entries))).to.deep.equal([]);
  });
});
