// The fault plan's scripted sequences: faults of several steps that must line up with the cluster's
// own moves (a leader just elected, a member entering a ballot) to reach what a consensus rule guards
// against. Each is started by one draw of the plan (./faults.ts) and stands down once the run heals.

import type { PeerMessage } from '../../actors/consensus/types.ts';
import type { Random } from '../../machines/random.ts';
import type { Simulation } from './simulation.ts';

/** Crash the leader, then each next leader soon after its election, `count` times in all. */
export const crashLeadersInARow = (sim: Simulation, rng: Random, count: number): void => {
  let crashed = 0;
  let last: number | null = null;
  let waited = 0;
  const poll = (): void => {
    if (sim.healed || crashed >= count || waited > 3000) return;
    const leader = sim.leader();
    if (leader === null || leader === last) {
      waited += 10;
      sim.at(sim.now + 10, poll);
      return;
    }
    waited = 0;
    last = leader;
    crashed++;
    sim.at(sim.now + rng.int(0, 80), () => {
      if (sim.healed) return;
      sim.crash(leader, { keepUnflushed: rng.chance(0.5), notifyPeers: rng.chance(0.3) });
      sim.at(sim.now + rng.int(30, 400), () => sim.restart(leader));
      poll();
    });
  };
  poll();
};

/** Simulations with a figure-8 chain running. */
const chains = new WeakSet<Simulation>();

/**
 * Raft's figure 8, as a fault: each leader, the moment it is about to append its own term's first
 * entry (LEADER_INIT), is cut off before that entry leaves (its outgoing links are blocked in the same
 * step) and crashes soon after, `count` times; the first leader is cut off while it appends client
 * commands no one else receives, and crashes only once it holds some. A later leader then holds an
 * older leader's entries on a quorum but no entry of its own term there, and a member with a newer
 * term's conflicting entry may still win.
 */
export const crashLeadersAsTheyStart = (sim: Simulation, rng: Random, count: number): void => {
  // One chain at a time: a second one's crashes and restarts would bring back the member holding the
  // newer term's entry before the older leader could win again.
  if (chains.has(sim)) return;
  chains.add(sim);
  let crashed = 0;
  let down: number | null = null;
  const until = sim.now + count * 2500;
  sim.exclusiveUntil = Math.max(sim.exclusiveUntil, until + 2500);
  const others = (id: number) => sim.memberIds.filter((m) => m !== id);
  const restartLast = (): void => {
    const back = down;
    down = null;
    if (back === null) return;
    sim.restart(back);
    if (rng.chance(0.5) && !sim.healed) {
      // It returns on a slow disk: its flush marks matter while its old tail is replaced.
      sim.setDiskLatency(back, rng.int(10, 80));
      sim.at(sim.now + rng.int(500, 2000), () => sim.setDiskLatency(back, 0));
    }
  };
  /**
   * Cut the leader off now and crash it after `afterMs`; with `tail`, not before it has appended
   * entries since, that no one else received (clients' commands; up to a second more).
   */
  const cutOffThenCrash = (leader: number, afterMs: number, tail = false): void => {
    for (const other of others(leader)) sim.block(leader, other);
    const cutAt = sim.node(leader)?.lastIndex ?? 0;
    let waited = 0;
    const crash = (): void => {
      const node = sim.node(leader);
      if (tail && !sim.healed && node && node.lastIndex <= cutAt && waited < 1000) {
        waited += 50;
        sim.at(sim.now + 50, crash);
        return;
      }
      for (const other of others(leader)) sim.unblock(leader, other);
      if (sim.healed) return;
      sim.crash(leader, { keepUnflushed: rng.chance(0.5), notifyPeers: rng.chance(0.5) });
      // The previous victim comes back as this one goes: only one member is down at a time, and each
      // returns with an older term's entries the members that stayed up do not have.
      restartLast();
      down = leader;
    };
    sim.at(sim.now + afterMs, crash);
  };
  /** Leaders already cut off, by member and term (LEADER_INIT and LEADER_READY both announce one). */
  const struck = new Set<string>();
  const listener = (event: { member: number; to: string; term: number }): void => {
    if (sim.healed || sim.now > until || crashed >= count) {
      if (!sim.electionListeners.delete(listener)) return;
      // The last victim holds the newest term's entry: back only once the others had time to elect
      // one of their own (the member the last leader left its older entries with).
      sim.at(sim.now + rng.int(1000, 2500), () => {
        restartLast();
        chains.delete(sim);
        sim.exclusiveUntil = sim.now;
      });
      return;
    }
    // LEADER_INIT is announced before the term's first entry is appended (and sent): cutting the
    // leader off then keeps that entry from leaving. LEADER_READY, for a chart that appends it first.
    if (event.to !== 'LEADER_INIT' && event.to !== 'LEADER_READY') return;
    const key = `${event.member}:${event.term}`;
    if (struck.has(key)) return;
    struck.add(key);
    crashed++;
    cutOffThenCrash(event.member, rng.int(0, 60));
  };
  sim.electionListeners.add(listener);
  sim.at(until, () => listener({ member: -1, to: 'END', term: 0 }));
  if (rng.chance(0.5)) {
    // Some of the chain's messages arrive terms later (old votes, old append responses).
    const before = sim.network.lateRate ?? 0;
    sim.network = { ...sim.network, lateRate: 0.05 + 0.2 * rng.float() };
    sim.at(until, () => {
      if (!sim.healed) sim.network = { ...sim.network, lateRate: before };
    });
  }
  const leader = sim.leader();
  if (leader !== null) cutOffThenCrash(leader, rng.int(20, 200), true);
};

/** For `duration`, a member entering a ballot (as voter or candidate) may crash at once. */
export const crashInBallot = (sim: Simulation, rng: Random, duration: number): void => {
  const until = sim.now + duration;
  const listener = (event: { member: number; to: string }): void => {
    if (sim.healed || sim.now > until) {
      sim.electionListeners.delete(listener);
      return;
    }
    if (event.to === 'CANDIDATE_BALLOT' && rng.chance(0.4)) sim.stallDisk(event.member, rng.int(20, 300));
    if (event.to === 'LEADER_LOG_REPLICATION' && rng.chance(0.3)) {
      // Just elected, maybe before its own term and vote are durable (its disk stalled): crash, back at once.
      const id = event.member;
      sim.at(sim.now, () => {
        if (sim.healed) return;
        sim.crash(id, { keepUnflushed: rng.chance(0.3) });
        sim.at(sim.now + rng.float() * 3, () => sim.restart(id));
      });
      return;
    }
    // Voters often; candidates seldom (a crashed candidate ends the ballot the voter's crash is about).
    if (
      event.to === 'FOLLOWER_BALLOT' ? !rng.chance(0.6) : event.to !== 'CANDIDATE_BALLOT' || !rng.chance(0.15)
    )
      return;
    const id = event.member;
    sim.at(sim.now + rng.float() * 2, () => {
      if (sim.healed) return;
      // The one it voted for goes unheard a while: its other candidates' ballots get their chance.
      const votedFor = sim.node(id)?.vote ?? null;
      if (votedFor !== null && votedFor !== id) {
        sim.block(votedFor, id);
        sim.at(sim.now + rng.int(300, 900), () => sim.unblock(votedFor, id));
      }
      sim.crash(id, { keepUnflushed: rng.chance(0.3) });
      // Back at once, half the time, while other candidates' requests of this term are in flight.
      sim.at(sim.now + (rng.chance(0.5) ? rng.float() * 3 : rng.int(5, 150)), () => sim.restart(id));
    });
  };
  sim.electionListeners.add(listener);
};

/**
 * Copies of the append responses the leader receives are kept, the leader is split off with one
 * follower while the others elect, and leaders then crash in a row; whenever the first leader leads
 * again, in a later term, the copies are delivered to it: acknowledgements of a log that a leader in
 * between may have overwritten.
 */
export const staleAppendResponses = (sim: Simulation, rng: Random, duration: number): void => {
  const leader = sim.leader();
  if (leader === null || sim.recorder !== null) return;
  const term = sim.node(leader)?.term ?? 0;
  const kept: { from: number; message: PeerMessage }[] = [];
  sim.recorder = (from, to, message) => {
    if (to === leader && message.type === 'APPEND_RESPONSE' && kept.length < 200)
      kept.push({ from, message });
  };
  const follower = rng.pick(sim.memberIds.filter((id) => id !== leader));
  sim.partition([[leader, follower], sim.memberIds.filter((id) => id !== leader && id !== follower)]);
  const until = sim.now + duration + 6000;
  const split = rng.int(300, 900);
  // The follower's log disk stalls past the split, half the time: the entries it took from the old
  // leader are still unflushed when the new leader's conflicting entries truncate them.
  if (rng.chance(0.5)) sim.stallDisk(follower, split + rng.int(300, 1500), ['log']);
  sim.at(sim.now + split, () => {
    sim.recorder = null;
    sim.healNetwork();
    if (sim.healed) return;
    sim.at(sim.now + rng.int(200, 1200), () => {
      if (!sim.healed) crashLeadersAsTheyStart(sim, rng, rng.int(2, 6));
    });
  });
  const listener = (event: { member: number; to: string; term: number }): void => {
    if (sim.healed || sim.now > until) {
      sim.electionListeners.delete(listener);
      return;
    }
    if (event.member !== leader || event.to !== 'LEADER_READY' || event.term <= term) return;
    for (const { from, message } of kept) sim.redeliver(from, leader, message);
  };
  sim.electionListeners.add(listener);
};

/** What `overwrittenTail` does with the tail once a later leader is elected. */
const TAIL_VARIANTS = ['stale-acks', 'slow-truncate', 'install', 'lost-first-append'] as const;

/**
 * An old leader's tail that one follower holds and a later leader overwrites: the setting of the rules
 * on stale acknowledgements and on flush marks. The leader L is cut off from all but one follower F
 * while its own log disk stalls, so F takes entries of L's term that L never flushes (so never
 * commits); L then crashes, losing them, and restarts with the short log, and the members with the
 * short log elect a new leader W while F cannot campaign. Then, by variant:
 * - 'stale-acks': F's acknowledgements of the tail are kept; whenever L leads again in a later term it
 *   is cut off and they are delivered to it, so no true acknowledgement competes with them (a leader
 *   ignores append responses of older terms). Winners other than L crash, up to three.
 * - 'slow-truncate': F's log disk is slow, so its flushes of the tail complete after W has truncated
 *   it and before W's own entries are flushed, while W hears only from F and a bare quorum (a
 *   truncation lowers the flush mark, also for appends still in flight).
 * - 'install': F hears nothing until W has taken a snapshot inside the tail, then gets it on a slow
 *   log disk while W hears only from F and a bare quorum (an install that discards the log lowers the
 *   flush mark to the commit position).
 * - 'lost-first-append': F may answer W from the start of W's leadership, so W replicates to it at once;
 *   then W's appends that carry entries to F are lost for a while and only its heartbeats arrive, naming
 *   a commit position past the log W verified with F, where F still holds the old tail (a follower
 *   commits no further than it has verified against the leader).
 */
export const overwrittenTail = (sim: Simulation, rng: Random): void => {
  const old = sim.leader();
  if (old === null) return;
  const variant = rng.pick(TAIL_VARIANTS);
  if (variant === 'stale-acks' && sim.recorder !== null) return;
  const ids = sim.memberIds;
  const others = (id: number) => ids.filter((m) => m !== id);
  const quorum = Math.floor(ids.length / 2) + 1;
  const oldTerm = sim.node(old)?.term ?? 0;
  const follower = rng.pick(others(old));
  const followerDisk = sim.member(follower).disk;
  // Long enough for the clients to send the old leader a few commands (each awaits one at a time);
  // for stale acknowledgements, a tail longer than what later leaders append before L leads again.
  const hold = variant === 'stale-acks' ? rng.int(800, 2000) : rng.int(300, 1000);
  const until = sim.now + hold + 8000;
  sim.exclusiveUntil = Math.max(sim.exclusiveUntil, sim.now + hold + 4000);
  for (const id of others(old)) if (id !== follower) sim.block(old, id);
  sim.stallDisk(old, hold + 50, ['log']);
  const kept: PeerMessage[] = [];
  const recorder = (from: number, to: number, message: PeerMessage): void => {
    if (from === follower && to === old && message.type === 'APPEND_RESPONSE' && kept.length < 200)
      kept.push(message);
  };
  if (variant === 'stale-acks') sim.recorder = recorder;
  // The tail's flushes on F complete this long after they are issued: after the election that follows.
  const tailFlushedBy = sim.now + hold + rng.int(1000, 1800);
  if (variant === 'slow-truncate') followerDisk.latency.log = tailFlushedBy - sim.now;

  /** Crash all but W, F and a bare quorum's worth of others; they come back at `back`. */
  const leaveBareQuorum = (w: number, back: number): void => {
    const spare = others(w).filter((id) => id !== follower);
    for (let i = 0; i < quorum - 2; i++) spare.splice(rng.int(0, spare.length - 1), 1);
    for (const id of spare) sim.crash(id, { keepUnflushed: rng.chance(0.5) });
    sim.at(back, () => {
      for (const id of spare) sim.restart(id);
    });
  };
  let crashes = 0;
  const listener = (event: { member: number; to: string; term: number }): void => {
    if (sim.healed || sim.now > until) {
      sim.electionListeners.delete(listener);
      return;
    }
    const w = event.member;
    if (
      variant === 'lost-first-append' &&
      event.to === 'LEADER_LOG_REPLICATION' &&
      event.term > oldTerm &&
      w !== follower &&
      sim.holder === null
    ) {
      sim.unblock(follower, w);
      const holder = (from: number, to: number, message: PeerMessage): boolean =>
        from === w && to === follower && message.type === 'APPEND' && message.entries.length > 0;
      sim.holder = holder;
      sim.at(sim.now + rng.int(200, 700), () => {
        if (sim.holder === holder) sim.holder = null;
      });
      return;
    }
    if (event.to !== 'LEADER_READY' || event.term <= oldTerm || w === follower) return;
    for (const id of others(follower)) sim.unblock(follower, id);
    switch (variant) {
      case 'stale-acks': {
        if (w === old) {
          sim.electionListeners.delete(listener);
          for (const id of others(w)) sim.block(w, id);
          sim.at(sim.now + rng.int(150, 400), () => {
            for (const id of others(w)) sim.unblock(w, id);
          });
          for (const message of kept) sim.redeliver(follower, old, message);
        } else if (crashes++ < 3) {
          sim.at(sim.now + rng.int(30, 150), () => {
            if (sim.healed) return;
            sim.crash(w, { keepUnflushed: rng.chance(0.5) });
            sim.at(sim.now + rng.int(300, 1200), () => sim.restart(w));
          });
        } else sim.electionListeners.delete(listener);
        return;
      }
      case 'slow-truncate': {
        sim.electionListeners.delete(listener);
        // W's entries (and its truncation of the tail) reach F's disk well after the tail's flushes.
        const window = Math.max(tailFlushedBy - sim.now, 0) + rng.int(300, 1000);
        followerDisk.latency.log = window;
        const back = sim.now + window + rng.int(100, 400);
        leaveBareQuorum(w, back);
        sim.at(back, () => {
          followerDisk.latency.log = 0;
        });
        return;
      }
      case 'lost-first-append':
        sim.electionListeners.delete(listener);
        return;
      case 'install': {
        sim.electionListeners.delete(listener);
        sim.at(sim.now + rng.int(40, 150), () => {
          if (sim.healed || sim.leader() !== w) return;
          sim.input(w, { type: 'REQUEST_SNAPSHOT' });
          sim.at(sim.now + rng.int(10, 40), () => {
            for (const id of others(follower)) sim.unblock(id, follower);
            if (sim.healed) return;
            const window = rng.int(300, 900);
            followerDisk.latency.log = window;
            const back = sim.now + window + rng.int(200, 600);
            leaveBareQuorum(w, back);
            sim.at(back, () => {
              followerDisk.latency.log = 0;
            });
          });
        });
        return;
      }
    }
  };
  sim.at(sim.now + hold, () => {
    if (sim.recorder === recorder) sim.recorder = null;
    for (const id of others(old)) sim.unblock(old, id);
    if (sim.healed) {
      followerDisk.latency.log = 0;
      return;
    }
    sim.crash(old, { keepUnflushed: false });
    sim.at(sim.now + rng.int(5, 60), () => sim.restart(old));
    // F cannot campaign (nor, for an install, hear the new leader) until a new leader is ready.
    for (const id of others(follower)) {
      sim.block(follower, id);
      if (variant === 'install') sim.block(id, follower);
    }
    sim.electionListeners.add(listener);
  });
};

/**
 * A leadership transfer's TIMEOUT_NOW that reaches its target after the target fell behind. The leader
 * asks a follower A to take over; its TIMEOUT_NOW is held back, so the transfer lapses and the leader
 * carries on; the leader's messages to A are then cut, for less than a heartbeat timeout, while it commits
 * more with the others; then the old TIMEOUT_NOW reaches A, which still follows the same leader in the
 * same term. A stands at once, with no canvass, and a log behind the quorum's: only the voters' log check
 * keeps it from winning (a vote goes only to a candidate whose log is at least as up to date).
 */
export const staleTransferTarget = (sim: Simulation, rng: Random): void => {
  const leader = sim.leader();
  if (leader === null || sim.holder !== null) return;
  const target = rng.pick(sim.memberIds.filter((id) => id !== leader));
  let held: PeerMessage | null = null;
  // Every TIMEOUT_NOW of the transfer is held (the leader sends one again on each acknowledgement that
  // finds the target caught up); the first is delivered later.
  const holder = (from: number, to: number, message: PeerMessage): boolean => {
    if (from !== leader || to !== target || message.type !== 'TIMEOUT_NOW') return false;
    held ??= message;
    return true;
  };
  sim.holder = holder;
  sim.input(leader, { type: 'TRANSFER_LEADERSHIP', to: target });
  const { electionTimeoutMs, heartbeatTimeoutMs } = sim.timeouts;
  sim.exclusiveUntil = Math.max(sim.exclusiveUntil, sim.now + electionTimeoutMs + heartbeatTimeoutMs + 500);
  sim.at(sim.now + electionTimeoutMs + rng.int(20, 200), () => {
    if (sim.holder === holder) sim.holder = null;
    const timeoutNow = held;
    if (timeoutNow === null || sim.healed) return;
    sim.block(leader, target);
    sim.at(sim.now + rng.int(100, Math.floor(heartbeatTimeoutMs * 0.8)), () => {
      if (!sim.healed) sim.redeliver(leader, target, timeoutNow);
      sim.at(sim.now + rng.int(0, 40), () => sim.unblock(leader, target));
    });
  });
};
