// When a gateway gives up its party connections (gateway/ownership.ts), on a simulated clock: the lease,
// and the cluster connection lost — dropped after disconnectDropMs, well before the leader may close the
// session (closeOnDisconnectMs after it saw the same close), unless the session is back in time.

import { expect } from 'chai';
import {
  DEFAULT_CLOSE_ON_DISCONNECT_MS,
  DISCONNECT_DROP_SHARE,
  resolveGatewayConfig,
} from '../../gateway/config.ts';
import { Ownership } from '../../gateway/ownership.ts';

const config = resolveGatewayConfig({
  name: 'g1',
  capacity: 10,
  endpoints: ['127.0.0.1:9010'],
  closeOnDisconnectMs: DEFAULT_CLOSE_ON_DISCONNECT_MS,
});
const { disconnectDropMs, closeOnDisconnectMs, leaseMs } = config;

/** A gateway whose last command was confirmed at `at`. */
const confirmedAt = (at: number) => {
  const ownership = new Ownership(config);
  ownership.confirmed(at);
  return ownership;
};

describe('gateway ownership (lease and cluster connection)', () => {
  it('the recommended closeOnDisconnectMs drops a quarter of the way through the close-on-disconnect grace: margin for delivery, the guard and skew', () => {
    expect(closeOnDisconnectMs).to.equal(DEFAULT_CLOSE_ON_DISCONNECT_MS);
    expect(disconnectDropMs).to.equal(DEFAULT_CLOSE_ON_DISCONNECT_MS * DISCONNECT_DROP_SHARE);
    expect(DISCONNECT_DROP_SHARE).to.equal(0.25);
    expect(disconnectDropMs).to.be.below(leaseMs);
  });

  it('once the cluster connection is lost, ownership lapses after disconnectDropMs, not before', () => {
    const ownership = confirmedAt(0);
    ownership.connectionLost(100);
    expect(ownership.lapsed(100 + disconnectDropMs - 1)).to.equal(null);
    expect(ownership.lapsed(100 + disconnectDropMs)).to.equal('cluster connection lost');
    // A second loss (another dial failing) does not restart the count.
    ownership.connectionLost(200);
    expect(ownership.lapsed(100 + disconnectDropMs)).to.equal('cluster connection lost');
  });

  it('a session back in time keeps ownership; a later loss counts afresh', () => {
    const ownership = confirmedAt(0);
    ownership.connectionLost(100);
    ownership.sessionOpen();
    expect(ownership.lapsed(100 + 2 * disconnectDropMs)).to.equal(null);
    ownership.connectionLost(1000);
    expect(ownership.lapsed(1000 + disconnectDropMs - 1)).to.equal(null);
    expect(ownership.lapsed(1000 + disconnectDropMs)).to.equal('cluster connection lost');
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
