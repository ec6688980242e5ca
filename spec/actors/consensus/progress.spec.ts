// The leader's per-follower progress state on its own: PROBE, REPLICATE, SNAPSHOT and what moves it.

import { expect } from 'chai';
import { FollowerProgress } from '../../../actors/consensus/progress.ts';

describe('follower progress (PROBE / REPLICATE / SNAPSHOT)', () => {
  it('starts probing and replicates once the probe is accepted', () => {
    const pr = new FollowerProgress(6, 0);
    expect(pr.state).to.equal('PROBE');
    expect(pr.acknowledged(3, 1), 'an ack below the probe moves match').to.equal(true);
    expect(pr.state).to.equal('PROBE');
    pr.acknowledged(5, 2);
    expect(pr.state).to.equal('REPLICATE');
    expect(pr.next).to.equal(6);
  });

  it('pipelines in REPLICATE and frees acknowledged batches', () => {
    const pr = new FollowerProgress(1, 0);
    pr.acknowledged(0, 0);
    pr.sent(4, 100);
    pr.sent(8, 50);
    expect([pr.next, pr.inflightBytes]).to.deep.equal([9, 150]);
    pr.acknowledged(4, 1);
    expect([pr.match, pr.inflightBytes, pr.inflight.length]).to.deep.equal([4, 50, 1]);
    expect(pr.isStalled(10, 10)).to.equal(false);
    expect(pr.isStalled(11, 10), 'unacknowledged for the stall time').to.equal(true);
  });

  it('a rejection counts only for the probe in flight and never below match', () => {
    const pr = new FollowerProgress(6, 0);
    expect(pr.isStaleRejection(5)).to.equal(false);
    expect(pr.isStaleRejection(4), 'a rejection of an older probe').to.equal(true);
    pr.acknowledged(5, 1);
    pr.sent(9, 10);
    expect(pr.isStaleRejection(5), 'at or below match').to.equal(true);
    expect(pr.isStaleRejection(7)).to.equal(false);
  });

  it('SNAPSHOT ignores rejections and leaves for REPLICATE, ready to send, once the install is acknowledged', () => {
    const pr = new FollowerProgress(1, 0);
    pr.snapshotSent(10, 5, 505);
    expect([pr.state, pr.next, pr.snapshotIndex, pr.snapshotResendAt]).to.deep.equal([
      'SNAPSHOT',
      11,
      10,
      505,
    ]);
    expect(pr.isStaleRejection(10)).to.equal(true);
    pr.acknowledged(9, 6);
    expect(pr.state, 'an ack below the snapshot is not the install').to.equal('SNAPSHOT');
    pr.acknowledged(10, 7);
    expect(pr.state).to.equal('REPLICATE');
    expect(pr.lastSentAt).to.equal(Number.NEGATIVE_INFINITY);
  });

  it('probe() forgets the pipeline and sends at once', () => {
    const pr = new FollowerProgress(1, 0);
    pr.acknowledged(0, 0);
    pr.sent(5, 100);
    pr.lastSentAt = 3;
    pr.probe(2, 4);
    expect([pr.state, pr.next, pr.inflightBytes, pr.inflight.length]).to.deep.equal(['PROBE', 2, 0, 0]);
    expect(pr.lastSentAt).to.equal(Number.NEGATIVE_INFINITY);
  });
});
