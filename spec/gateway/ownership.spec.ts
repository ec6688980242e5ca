// When a gateway gives up its party connections (gateway/ownership.ts), on a simulated clock: the lease,
// and, with close on disconnect (the default), the cluster connection lost — dropped at once, since the
// leader may close the session closeOnDisconnectMs after it saw the same close, until a session is back.

import { expect } from 'chai';
import { DEFAULT_CLOSE_ON_DISCONNECT_MS, resolveGatewayConfig } from '../../gateway/config.ts';
import { Ownership } from '../../gateway/ownership.ts';

const base = { name: 'g1', capacity: 10, endpoints: ['127.0.0.1:9010'] };
const config = resolveGatewayConfig({ ...base, closeOnDisconnectMs: DEFAULT_CLOSE_ON_DISCONNECT_MS });
const { leaseMs } = config;

/** A gateway whose last command was confirmed at `at`. */
const confirmedAt = (at: number) => {
  const ownership = new Ownership(config);
  ownership.confirmed(at);
  return ownership;
};

describe('gateway ownership (lease and cluster connection)', () => {
  it('with close on disconnect, ownership lapses the moment the cluster connection is lost, and comes back with a session', () => {
    expect(config.dropOnDisconnect).to.equal(true);
    const ownership = confirmedAt(0);
    expect(ownership.lapsed(100)).to.equal(null);
    ownership.connectionLost(100);
    expect(ownership.lapsed(100)).to.equal('cluster connection lost');
    ownership.connectionLost(200); // another dial failing changes nothing
    expect(ownership.lapsed(200)).to.equal('cluster connection lost');
    ownership.sessionOpen();
    expect(ownership.lapsed(300)).to.equal(null);
    ownership.connectionLost(1000);
    expect(ownership.lapsed(1000)).to.equal('cluster connection lost');
  });

  it('without it, a lost cluster connection alone lapses nothing: the lease does', () => {
    const off = new Ownership(resolveGatewayConfig({ ...base, closeOnDisconnectMs: null }));
    off.confirmed(0);
    off.connectionLost(100);
    expect(off.lapsed(100 + leaseMs - 100)).to.equal(null);
    expect(off.lapsed(leaseMs + 1)).to.equal('lease expired');
  });

  it('connected, ownership lasts the lease from the last confirmed command, and no longer', () => {
    const ownership = confirmedAt(0);
    ownership.confirmed(500);
    ownership.confirmed(300); // an older answer arriving late does not shorten it
    expect(ownership.lapsed(500 + leaseMs)).to.equal(null);
    expect(ownership.lapsed(500 + leaseMs + 1)).to.equal('lease expired');
    expect(new Ownership(config).lapsed(0), 'nothing confirmed yet').to.equal('lease expired');
  });
});
