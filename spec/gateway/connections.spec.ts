// A gateway's outbound connections (gateway/links.ts over gateway/tcp-dialer.ts) against the real stand-in: a new epoch of a
// party opens only once the older epoch's connection is closed at the remote end; what fails is reported
// FAILED, what closes CLOSED; a lease drop closes everything at once.

import { createServer } from 'node:net';
import { expect } from 'chai';
import type { Wanted } from '../../gateway/duties.ts';
import { Links, type ReportStatus } from '../../gateway/links.ts';
import { StandIn } from '../../gateway/stand-in.ts';
import { tcpDialer } from '../../gateway/tcp-dialer.ts';
import { eventually } from '../support/ports.ts';

describe('gateway connections (one per party, epochs in order)', () => {
  let standIn: StandIn;
  let connections: Links;
  let reports: [string, number, ReportStatus][];

  beforeEach(async () => {
    standIn = await StandIn.start({ livenessMs: 0 });
    reports = [];
    connections = new Links({
      dialer: tcpDialer({ gateway: 'g1', heartbeatMs: 100, timeoutMs: 5_000 }),
      report: (party, epoch, status) => reports.push([party, epoch, status]),
    });
  });
  afterEach(async () => {
    await converge(new Map());
    await standIn.close();
  });

  const converge = (wanted: ReadonlyMap<string, Wanted>) =>
    new Promise<void>((resolve) => connections.converge(wanted, resolve));
  const want = (entries: [string, number][], endpoint = standIn.endpoint): Map<string, Wanted> =>
    new Map(entries.map(([party, epoch]) => [party, { epoch, endpoint }]));

  it('opens each wanted party; a new epoch opens only after the old connection is closed at the remote end', async () => {
    await converge(
      want([
        ['p1', 1],
        ['p2', 1],
      ]),
    );
    expect(Object.fromEntries(connections.open)).to.deep.equal({ p1: 1, p2: 1 });
    await converge(want([['p1', 2]]));
    expect(Object.fromEntries(connections.open)).to.deep.equal({ p1: 2 });
    expect(standIn.overlaps).to.deep.equal([]);
    const p1 = standIn.records.filter((r) => r.party === 'p1');
    expect(p1.map((r) => r.epoch)).to.deep.equal([1, 2]);
    expect(p1[0].closedAt as number, 'epoch 1 closed before epoch 2 opened').to.be.at.most(p1[1].openedAt);
    expect(reports).to.deep.include.members([
      ['p1', 1, 'OPENED'],
      ['p2', 1, 'OPENED'],
      ['p1', 1, 'CLOSED'],
      ['p2', 1, 'CLOSED'],
      ['p1', 2, 'OPENED'],
    ]);
    // The same wants again change nothing and report nothing.
    const before = reports.length;
    await converge(want([['p1', 2]]));
    expect(reports).to.have.length(before);
  });

  it('reports FAILED for an endpoint that refuses, and for a connection the remote end closes', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const address = closed.address() as { port: number };
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await converge(want([['p1', 1]], `127.0.0.1:${address.port}`));
    expect(reports).to.deep.equal([['p1', 1, 'FAILED']]);
    expect(connections.open.size).to.equal(0);

    await converge(want([['p2', 3]]));
    expect(reports.at(-1)).to.deep.equal(['p2', 3, 'OPENED']);
    await standIn.close(); // the remote end goes away
    await eventually(() => connections.open.size === 0, 'the connection noticed closed');
    expect(reports.at(-1)).to.deep.equal(['p2', 3, 'FAILED']);
    standIn = await StandIn.start({ livenessMs: 0 }); // for afterEach
  });

  it('dropAll closes every connection at once and reports nothing; the same wants then reopen the same epochs, each after its close reached the remote end', async () => {
    const three = want([
      ['p1', 1],
      ['p2', 1],
      ['p3', 1],
    ]);
    await converge(three);
    const before = reports.length;
    connections.dropAll();
    expect(connections.open.size).to.equal(0);
    await eventually(() => standIn.liveConnections().length === 0, 'the remote end saw them close');
    expect(reports.slice(before), 'a drop reports nothing').to.deep.equal([]);
    // A duty list that still gives them: the same epochs open again, never two at once.
    await converge(three);
    expect(Object.fromEntries(connections.open)).to.deep.equal({ p1: 1, p2: 1, p3: 1 });
    expect(
      reports
        .slice(before)
        .map(([p, e, st]) => `${p}@${e} ${st}`)
        .sort(),
    ).to.deep.equal(['p1@1 OPENED', 'p2@1 OPENED', 'p3@1 OPENED']);
    expect(standIn.overlaps).to.deep.equal([]);
    for (const party of ['p1', 'p2', 'p3']) {
      const [first, second] = standIn.records.filter((r) => r.party === party);
      expect(first.closedAt as number, `${party}: the first closed before the second opened`).to.be.at.most(
        second.openedAt,
      );
    }
  });
});
