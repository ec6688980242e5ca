// The remote-system stand-in (gateway/stand-in.ts): it records every connection per party, flags two live
// connections for one party, refuses a first line it cannot read, and ends a connection gone silent.

import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
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

  it('chorus gateway stand-in prints each connection and an overlap as JSON lines, and exits 1 after one', async function () {
    this.timeout(60_000); // the process loads through tsx: slow on a loaded machine
    const chorus = fileURLToPath(new URL('../../bin/chorus.js', import.meta.url));
    const child = spawn(process.execPath, [chorus, 'gateway', 'stand-in', '--port', '0', '--json'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const events: Record<string, unknown>[] = [];
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        events.push(JSON.parse(buffered.slice(0, nl)));
        buffered = buffered.slice(nl + 1);
      }
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await eventually(() => events.some((e) => e.event === 'listening'), 'the stand-in listening', 50_000);
    const endpoint = String(events[0].endpoint);
    const fake = { endpoint } as StandIn;
    const first = await open(fake, hello('p1', 1, 'g1'));
    const second = await open(fake, hello('p1', 2, 'g2'));
    sockets.push(first.socket, second.socket);
    await eventually(() => events.some((e) => e.event === 'overlap'), 'the overlap printed');
    expect(events.filter((e) => e.event === 'open').map((e) => [e.party, e.epoch, e.gateway])).to.deep.equal([
      ['p1', 1, 'g1'],
      ['p1', 2, 'g2'],
    ]);
    child.kill('SIGINT');
    expect(await exited, 'exit code after an overlap').to.equal(1);
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
