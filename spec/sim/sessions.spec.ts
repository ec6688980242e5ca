// Client sessions in the simulator: the production session manager inside the consensus module and the
// real client library's connection machine, over the simulated client network.

import { expect } from 'chai';
import { EntryKind } from '../../actors/log/log-entry.ts';
import { decodeSessionClose } from '../../actors/sessions/payloads.ts';
import { KvWorkload } from '../../runtime/sim/clients.ts';
import type { Simulation } from '../../runtime/sim/simulation.ts';
import { healAndFinish, maxCommit, startCluster } from './helpers.ts';

/** The sessions closed through the log, with why. */
const closedSessions = (sim: Simulation): { sessionId: number; reason: string }[] => {
  const closed: { sessionId: number; reason: string }[] = [];
  for (let index = 1; index <= maxCommit(sim); index++) {
    const entry = sim.checker.committedEntry(index);
    if (entry?.kind === EntryKind.SESSION_CLOSE) closed.push(decodeSessionClose(entry.payload));
  }
  return closed;
};

describe('sim: client sessions', () => {
  it('C5: a client cut off past the session timeout — its session closes with TIMEOUT through the log; back, the client opens a new one and carries on', () => {
    const sessionTimeoutMs = 1500;
    const { sim } = startCluster({ seed: 41, sessionTimeoutMs });
    const workload = sim.workload as KvWorkload;
    expect(workload).to.be.instanceOf(KvWorkload);
    const client = workload.clients[0];
    const before = client.sessionId;
    expect(before).to.be.a('number');
    for (const id of sim.memberIds) sim.blockClient(0, id);
    sim.runFor(sessionTimeoutMs + 1000);
    expect(closedSessions(sim)).to.deep.include({ sessionId: before, reason: 'TIMEOUT' });
    sim.healNetwork();
    const healedAt = sim.now;
    sim.runFor(3000);
    expect(client.sessionId, 'a new session').to.be.a('number').and.not.equal(before);
    const answered = workload.history.filter(
      (op) => op.clientId === 0 && op.ret !== null && op.call >= healedAt,
    );
    expect(answered.length, "the client's operations after it came back").to.be.greaterThan(0);
    const report = healAndFinish(sim);
    expect(report.violations).to.deep.equal([]);
    expect(report.linearizable).to.equal(true);
  });
});
