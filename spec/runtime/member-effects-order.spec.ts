// The member's executor (runtime/member-effects.ts) carries out the consensus module's effects in the order
// the module emitted them. The services' tick may propose entries at once (timers that fell due), which
// calls the module again and carries out that call's effects on the spot; before the fix, those appends
// reached the log before the appends the outer call had emitted ahead of the tick, so a later seq could be
// written, and acknowledged, first — and the module takes APPENDED(seq) for every append up to seq: a leader
// counted itself for an entry not yet on its disk (the simulator's gateway workload, seed 122, saw it as
// COMMIT_WITHOUT_QUORUM). The tick now runs after the other effects.

import { expect } from 'chai';
import type { ModuleEffect, ModuleInput } from '../../actors/consensus/consensus-module.ts';
import type { LogEntry } from '../../actors/log/log-entry.ts';
import { EffectExecutor, type EffectHost } from '../../runtime/member-effects.ts';

const entry = (index: number) => ({ index, term: 1 }) as unknown as LogEntry;

describe('member effects: order', () => {
  it("appends proposed by the services' tick go to the log after the appends emitted before the tick", async () => {
    const appended: number[] = [];
    const inputs: ModuleInput[] = [];
    let effects: EffectExecutor;
    const host = {
      running: true,
      store: {
        log: {
          append: (entries: readonly LogEntry[]) => {
            for (const e of entries) appended.push(e.index);
            return Promise.resolve();
          },
        },
      },
      // A due timer: the tick proposes at once, and the module's answer is carried out there and then.
      service: { tick: () => effects.executeAll([{ type: 'APPEND', seq: 3, entries: [entry(12)] }]) },
      input: (input: ModuleInput) => inputs.push(input),
      propose: () => 0,
      fatal: (error: Error) => {
        throw error;
      },
      storageFailed: (error: Error) => {
        throw error;
      },
    } as unknown as EffectHost;
    effects = new EffectExecutor(host);
    const emitted = [
      { type: 'SERVICE_TICK', clusterTime: 1000 },
      { type: 'APPEND', seq: 1, entries: [entry(10)] },
      { type: 'APPEND', seq: 2, entries: [entry(11)] },
    ] as ModuleEffect[];
    effects.executeAll(emitted);
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(appended, 'log write order').to.deep.equal([10, 11, 12]);
    expect(
      inputs.filter((i) => i.type === 'APPENDED').map((i) => (i as { seq: number }).seq),
      'APPENDED order',
    ).to.deep.equal([2, 3]);
  });
});
