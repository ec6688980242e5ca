// The remote-system stand-in (gateway/stand-in.ts): it records every connection per party, flags two live
// connections for one party, refuses a first line it cannot read, and ends a connection gone silent.

import { connect, type Socket } from 'node:net';
import { expect } from 'chai';
import { parseHello, StandIn } from '../../gateway/stand-in.ts';
import { eventually } from '../support/ports.ts';

const open = (standIn: StandIn, firstLine: string, end = '\n'): Promise<{ socket: Socket; answer: string }> =>
  new Promise((resolve, reject) => {
    const [host, port] = standIn.endpoint.split(':');
    const socket = connect(Number(port), host, () => socket.write(`${firstLine}${end}`));
    socket.setEncoding('utf8');
    socket.once('data', (answer: string) => resolve({ socket, answer }));
    socket.once('error', reject);
  });

const hello = (party: string, epoch: number, gateway: string) => JSON.stringify({ party, epoch, gateway });

describe('gateway stand-in (the remote system)', () => {
  let standIn: StandIn | null = null;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await standIn?.close();
    standIn = null;
  });

  it('records each connection with party, epoch and gateway, and flags a second live one for the same party', async () => {
    standIn = await StandIn.start({ livenessMs: 0 });
    const first = await open(standIn, hello('p1', 1, 'g1'));
    sockets.push(first.socket);
    expect(first.answer).to.equal('OK\n');
    const other = await open(standIn, hello('p2', 1, 'g2'));
    sockets.push(other.socket);
    expect(standIn.overlaps).to.deep.equal([]);
    expect(Object.fromEntries(standIn.holders())).to.deep.equal({ p1: 'g1', p2: 'g2' });

    const second = await open(standIn, hello('p1', 2, 'g2'));
    sockets.push(second.socket);
    expect(standIn.overlaps).to.have.length(1);
    const [overlap] = standIn.overlaps;
    expect(overlap.party).to.equal('p1');
    expect(overlap.connections.map((c) => [c.epoch, c.gateway])).to.deep.equal([
      [1, 'g1'],
      [2, 'g2'],
    ]);

    // Closed by the gateway: no longer live, its close time recorded; a new one is no overlap.
    first.socket.end();
    second.socket.end();
    await eventually(() => standIn?.liveConnections('p1').length === 0, 'p1 closed');
    const third = await open(standIn, hello('p1', 3, 'g3'));
    sockets.push(third.socket);
    expect(standIn.overlaps).to.have.length(1);
    const p1 = standIn.records.filter((r) => r.party === 'p1');
    expect(p1.map((r) => [r.epoch, r.closedBy])).to.deep.equal([
      [1, 'gateway'],
      [2, 'gateway'],
      [3, null],
    ]);
  });

  it('refuses a first line that is not a hello, naming the problem, and keeps serving', async () => {
    standIn = await StandIn.start({ livenessMs: 0 });
    for (const [line, problem] of [
      ['HELLO p1', /not JSON/],
      ['[1,2]', /not an object/],
      [JSON.stringify({ party: '', epoch: 1, gateway: 'g' }), /party/],
      [JSON.stringify({ party: 'p', epoch: -1, gateway: 'g' }), /epoch/],
      [JSON.stringify({ party: 'p', epoch: 1.5, gateway: 'g' }), /epoch/],
      [JSON.stringify({ party: 'p', epoch: 1 }), /gateway/],
    ] as const) {
      expect(parseHello(line), line).to.have.property('problem').that.matches(problem);
      const { socket, answer } = await open(standIn, line);
      sockets.push(socket);
      expect(answer, line).to.match(/^ERROR /);
    }
    const { answer } = await open(standIn, 'x'.repeat(600), ''); // no newline within the limit
    expect(answer).to.match(/^ERROR first line longer/);
    expect(standIn.records).to.deep.equal([]);
    const good = await open(standIn, hello('p1', 1, 'g1'));
    sockets.push(good.socket);
    expect(good.answer).to.equal('OK\n');
  });

  it('ends a connection that stays silent past livenessMs, as the counterparty would', async () => {
    standIn = await StandIn.start({ livenessMs: 200 });
    const { socket } = await open(standIn, hello('p1', 1, 'g1'));
    sockets.push(socket);
    const closed = new Promise((resolve) => socket.once('close', resolve));
    await eventually(
      () => standIn?.liveConnections('p1').length === 0,
      'the silent connection ended',
      10_000,
    );
    await closed;
    expect(standIn.records[0].closedBy).to.equal('stand-in');
  });
});
