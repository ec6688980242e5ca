import { createConnection } from 'node:net';
import { expect } from 'chai';
import { PeerKind, PeerNetwork } from '../../../runtime/peer-network.ts';
import { encodeFrame, PROTOCOL_VERSION } from '../../../runtime/wire/frame-codec.ts';
import { dial, type FramedConnection, TcpListener } from '../../../runtime/wire/transport.ts';
import { memberConfigs, peerOptions } from '../../security/peers.ts';
import { eventually, freePorts } from '../../support/ports.ts';

describe('TCP transport', () => {
  const networks: PeerNetwork[] = [];
  const listeners: TcpListener[] = [];
  afterEach(async () => {
    await Promise.all(networks.splice(0).map((n) => n.stop()));
    await Promise.all(listeners.splice(0).map((l) => l.stop()));
  });

  const cluster = memberConfigs;

  it('connects every pair of members once and delivers messages both ways, in order', async () => {
    const members = await cluster(3);
    const received: [number, number, unknown][] = [];
    for (const self of members) {
      const network = new PeerNetwork(
        peerOptions(self, members, { onMessage: (from, message) => received.push([self.id, from, message]) }),
      );
      networks.push(network);
      await network.start();
    }
    await eventually(() => networks.every((n) => n.connectedPeers().length === 2), 'all peers connected');
    for (let i = 1; i <= 100; i++) networks[0].send(2, { type: 'TIMEOUT_NOW', term: i });
    networks[2].send(0, { type: 'VOTE', term: 99, granted: true });
    networks[1].send(2, { type: 'VOTE', term: 7, granted: false });
    await eventually(() => received.length === 102, 'messages delivered');
    const from0to2 = received
      .filter(([to, from]) => to === 2 && from === 0)
      .map(([, , m]) => (m as { term: number }).term);
    expect(from0to2).to.deep.equal(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(received).to.deep.include([0, 2, { type: 'VOTE', term: 99, granted: true }]);
    expect(received).to.deep.include([2, 1, { type: 'VOTE', term: 7, granted: false }]);
  });

  it('redials a peer that restarts and drops messages while it is away', async () => {
    const members = await cluster(2);
    const got: unknown[] = [];
    const start = async (id: number) => {
      const network = new PeerNetwork(
        peerOptions(members[id], members, {
          onMessage: (_, m) => got.push(m),
          backoffBaseMs: 10,
          backoffMaxMs: 50,
        }),
      );
      await network.start();
      return network;
    };
    const a = await start(0);
    networks.push(a);
    let b = await start(1);
    await eventually(() => a.connectedPeers().length === 1, 'connected');
    await b.stop();
    await eventually(() => a.connectedPeers().length === 0, 'disconnect noticed');
    expect(a.send(1, { type: 'TIMEOUT_NOW', term: 1 })).to.equal(false);
    b = await start(1);
    networks.push(b);
    await eventually(() => a.connectedPeers().length === 1 && b.connectedPeers().length === 1, 'reconnected');
    a.send(1, { type: 'TIMEOUT_NOW', term: 2 });
    await eventually(() => got.length === 1, 'delivery after reconnect');
    expect(got).to.deep.equal([{ type: 'TIMEOUT_NOW', term: 2 }]);
  });

  it('refuses a member configured with a different cluster, saying why', async () => {
    const members = await cluster(2);
    const other = [members[0], { ...members[1], clientPort: members[1].clientPort + 1 }];
    const reasons: string[] = [];
    const a = new PeerNetwork(
      peerOptions(members[0], members, {
        onMessage: () => {},
        onPeerChange: (_, up, reason) => !up && reasons.push(reason),
      }),
    );
    const b = new PeerNetwork(peerOptions(other[1], other, { onMessage: () => {} }));
    networks.push(a, b);
    await b.start();
    await a.start();
    await eventually(() => reasons.length > 0, 'the handshake refused');
    expect(reasons[0]).to.match(
      /refused by member 1: member 0 is configured with members ".*" but this member has/,
    );
    expect(a.connectedPeers()).to.deep.equal([]);
    expect(b.connectedPeers()).to.deep.equal([]);
  });

  it('closes a connection that sends garbage, and the member keeps serving others', async () => {
    const members = await cluster(2);
    const got: unknown[] = [];
    const b = new PeerNetwork(
      peerOptions(members[1], members, { maxFrameBytes: 1024, onMessage: (_, m) => got.push(m) }),
    );
    networks.push(b);
    await b.start();
    const socket = createConnection({ host: '127.0.0.1', port: members[1].peerPort });
    const closed = new Promise<string>((resolve) => {
      let data = Buffer.alloc(0);
      socket.on('data', (d) => (data = Buffer.concat([data, d])));
      socket.on('close', () => resolve(data.toString('latin1')));
    });
    socket.write(Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3]));
    expect(await closed).to.include('exceeds the maximum of 1024 bytes');
    const a = new PeerNetwork(peerOptions(members[0], members, { maxFrameBytes: 1024, onMessage: () => {} }));
    networks.push(a);
    await a.start();
    await eventually(() => a.connectedPeers().length === 1, 'a real peer still connects');
    a.send(1, { type: 'TIMEOUT_NOW', term: 3 });
    await eventually(() => got.length === 1, 'delivered');
  });

  it('O4: a peer speaking another protocol version is refused with the reason', async () => {
    const members = await cluster(2);
    const b = new PeerNetwork(peerOptions(members[1], members, { onMessage: () => {} }));
    networks.push(b);
    await b.start();
    const connection = await dial('127.0.0.1', members[1].peerPort, {
      maxFrameBytes: 1 << 20,
      name: 'member 1',
    });
    const reason = new Promise<string>((resolve) => connection.once('close', resolve));
    connection.socket.write(encodeFrame(PeerKind.HELLO, { memberId: 0 }, PROTOCOL_VERSION + 1));
    expect(await reason).to.include(`protocol version ${PROTOCOL_VERSION + 1} is not supported`);
  });

  it('R2: refuses connections over the limit with a reason; existing ones keep working', async () => {
    const [port] = await freePorts(1);
    const accepted: FramedConnection[] = [];
    const listener = new TcpListener(
      {
        host: '127.0.0.1',
        port,
        maxConnections: { value: 2, setting: 'limits.test' },
        maxFrameBytes: 1024,
        name: 'test',
      },
      (c) => {
        accepted.push(c);
        c.on('frame', (kind, body) => c.send(kind, body));
      },
    );
    listeners.push(listener);
    await listener.start();
    const options = { maxFrameBytes: 1024, name: 'server' };
    const first = await dial('127.0.0.1', port, options);
    const second = await dial('127.0.0.1', port, options);
    const third = await dial('127.0.0.1', port, options);
    const refused = await new Promise<string>((resolve) => third.once('close', resolve));
    expect(refused).to.include(
      'too many connections: test accepts at most 2; retry later or raise limits.test',
    );
    const echoed = new Promise<unknown>((resolve) => first.once('frame', (_, body) => resolve(body)));
    first.send(3, 'still here');
    expect(await echoed).to.equal('still here');
    expect(second.closed).to.equal(false);
    first.close('done');
    second.close('done');
  });

  it('R2: per-address limit, handshake timeout and idle timeout, each refusal naming its setting', async () => {
    const [port] = await freePorts(1);
    const limits = {
      maxConnections: { value: 100, setting: 'limits.max' },
      maxConnectionsPerAddress: { value: 2, setting: 'limits.perAddress' },
      handshakeTimeoutMs: { value: 500, setting: 'limits.handshake' },
      idleTimeoutMs: { value: 800, setting: 'limits.idle' },
    };
    const listener = new TcpListener(
      { host: '127.0.0.1', port, maxFrameBytes: 1024, name: 'test', ...limits },
      (c) => c.on('frame', () => c.establish()),
    );
    listeners.push(listener);
    await listener.start();
    const open = (localAddress: string) => {
      const socket = createConnection({ host: '127.0.0.1', port, localAddress });
      socket.on('error', () => {});
      let data = '';
      socket.on('data', (d) => {
        data += d.toString('latin1');
      });
      const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(data)));
      return { socket, closed };
    };
    // Two from one address are taken, the third refused; another address is not affected.
    const [silent, talker, third] = [open('127.0.0.2'), open('127.0.0.2'), open('127.0.0.2')];
    const other = open('127.0.0.3');
    // One that sends a frame is established; while it keeps sending it stays, once silent it is closed.
    talker.socket.write(encodeFrame(3, 'hello'));
    other.socket.write(encodeFrame(3, 'hello'));
    const keepalive = setInterval(() => other.socket.write(encodeFrame(3, 'still here')), 50);
    expect(await third.closed).to.include(
      'too many connections from 127.0.0.2: test accepts at most 2 per address; close some or raise limits.perAddress',
    );
    // One that never completes a frame is closed at the handshake timeout.
    expect(await silent.closed).to.include('handshake not completed within 500 ms; raise limits.handshake');
    try {
      const idle = await talker.closed;
      expect(idle, idle).to.include(
        'idle: no complete frame for 800 ms; send keepalives or raise limits.idle',
      );
      expect(other.socket.destroyed, 'the connection that keeps sending').to.equal(false);
    } finally {
      clearInterval(keepalive);
      other.socket.destroy();
    }
  });
});
