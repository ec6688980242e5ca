// The seed's fault plan: which faults strike, when, and for how long, all drawn from the planner's
// generator so a seed replays exactly. Besides the network and process faults every Raft test has,
// the plan produces what the subtler consensus rules guard against: crashes of leader after leader
// (Raft's figure 8 needs an old leader's entries replicated by a later leader), messages held back
// past an election timeout so they land in later terms (stale votes, stale append responses), a
// leadership transfer with a TIMEOUT_NOW delivered late and twice, broken connections, suspend, a
// stalling disk whose two flush queues complete out of step, crashes that keep part of what was never
// acknowledged (a torn last append), a lost member directory, partitions that cut clients off too,
// client resends delivered behind the client's newer commands, and an old leader's tail held by one
// follower only and overwritten by a later leader (stale acknowledgements of it, its flushes
// completing after the truncation, a snapshot installed over it), and a transfer's TIMEOUT_NOW reaching
// a target that fell behind meanwhile (a candidate with a stale log, no canvass to stop it).

import type { Random } from '../../machines/random.ts';
import {
  crashInBallot,
  crashLeadersAsTheyStart,
  crashLeadersInARow,
  overwrittenTail,
  staleAppendResponses,
  staleTransferTarget,
} from './fault-sequences.ts';
import type { Simulation } from './simulation.ts';

/** The kinds of fault the plan draws from, by name (reports and docs use these names). */
export const FAULT_KINDS = [
  'crash',
  'isolate',
  'partition',
  'asymmetric',
  'flapping',
  'pause',
  'lossy-network',
  'crash-majority',
  'crash-quick-restart',
  'crash-leaders-in-a-row',
  'crash-in-ballot',
  'stale-append-responses',
  'overwritten-tail',
  'late-messages',
  'transfer-leadership',
  'stale-transfer-target',
  'connection-loss',
  'suspend',
  'disk-stall',
  'lost-directory',
  'partition-with-clients',
  'late-client-resends',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * What a sweep draws by default: every kind but a lost member directory. Raft keeps its promises only
 * while a member's disk keeps what it acknowledged: a member that restarts empty was part of the
 * quorum of entries it no longer holds, and can vote a second time in a term it already voted in.
 * With `faultKinds` including 'lost-directory' a sweep shows exactly that (COMMITTED_ENTRY_LOST,
 * LEADER_COMPLETENESS, ELECTION_SAFETY); D5's safe rejoin needs the consensus module to keep a wiped
 * member from voting and acknowledging until a leader has caught it up.
 */
export const DEFAULT_FAULT_KINDS: readonly FaultKind[] = FAULT_KINDS.filter((k) => k !== 'lost-directory');

export interface FaultPlanOptions {
  intensity: number;
  /** Virtual time window [start, end) in which faults strike. */
  start: number;
  end: number;
  /** Draw only these kinds (default: DEFAULT_FAULT_KINDS). */
  kinds?: readonly FaultKind[];
}

/**
 * The sequences that need this much time to play out (virtual ms) strike only that long before the
 * end of the faulty phase; a later draw of one of them picks another kind.
 */
const RUNWAY: Partial<Record<FaultKind, number>> = { 'overwritten-tail': 3000 };

const WEIGHTS: Partial<Record<FaultKind, number>> = {
  'crash-leaders-in-a-row': 3,
  'crash-in-ballot': 3,
  'stale-append-responses': 3,
  'overwritten-tail': 4,
  'late-messages': 2,
  'stale-transfer-target': 2,
};

/** Schedule the seed's random faults; returns how many of each kind were planned. */
export const planFaults = (
  sim: Simulation,
  rng: Random,
  options: FaultPlanOptions,
): Partial<Record<FaultKind, number>> => {
  const { intensity, start, end } = options;
  const kinds = options.kinds ?? DEFAULT_FAULT_KINDS;
  const planned: Partial<Record<FaultKind, number>> = {};
  // The sequences that need several steps to line up are drawn more often.
  const draw = kinds.flatMap((kind) => Array.from({ length: WEIGHTS[kind] ?? 1 }, () => kind));
  const gap = Math.round(1400 - 1000 * intensity);
  let t = start;
  while (true) {
    t += rng.int(Math.round(gap / 2), gap);
    if (t >= end) break;
    const duration = rng.int(150, 1800);
    let kind = rng.pick(draw);
    if (t + (RUNWAY[kind] ?? 0) > end) {
      const short = draw.filter((k) => t + (RUNWAY[k] ?? 0) <= end);
      if (short.length === 0) continue;
      kind = rng.pick(short);
    }
    planned[kind] = (planned[kind] ?? 0) + 1;
    sim.at(t, () => {
      if (!sim.healed && sim.now >= sim.exclusiveUntil) strike(sim, rng, kind, duration, intensity);
    });
  }
  return planned;
};

/** One fault, now; it undoes itself after `duration` (unless the run healed first). */
const strike = (sim: Simulation, rng: Random, kind: FaultKind, duration: number, intensity: number): void => {
  const ids = sim.memberIds;
  const others = (id: number) => ids.filter((m) => m !== id);
  const pickTarget = (): number => (rng.chance(0.5) ? (sim.leader() ?? rng.pick(ids)) : rng.pick(ids));
  const later = (ms: number, run: () => void) => sim.at(sim.now + ms, run);
  /** A follow-up fault: it does not strike once the run has healed. */
  const thenStrike = (ms: number, run: () => void) => later(ms, () => sim.healed || run());
  const crashOptions = () => ({ keepUnflushed: rng.chance(0.5), notifyPeers: rng.chance(0.5) });
  const shuffled = (): number[] =>
    ids
      .map((id) => ({ id, k: rng.uint32() }))
      .sort((a, b) => a.k - b.k)
      .map((s) => s.id);
  switch (kind) {
    case 'crash': {
      const id = pickTarget();
      sim.crash(id, crashOptions());
      later(duration, () => sim.restart(id));
      return;
    }
    case 'isolate':
      sim.isolate(pickTarget());
      later(duration, () => sim.healNetwork());
      return;
    case 'partition': {
      const order = shuffled();
      const cut = rng.int(1, ids.length - 1);
      sim.partition([order.slice(0, cut), order.slice(cut)]);
      later(duration, () => sim.healNetwork());
      return;
    }
    case 'asymmetric': {
      // A member can send but not receive (or the reverse), link by link.
      const id = pickTarget();
      for (const other of others(id)) {
        if (rng.chance(0.5)) sim.block(id, other);
        else sim.block(other, id);
      }
      later(duration, () => sim.healNetwork());
      return;
    }
    case 'flapping': {
      const id = rng.pick(ids);
      const flips = rng.int(4, 14);
      let at = sim.now;
      for (let i = 0; i < flips; i++) {
        at += rng.int(30, 160);
        const cut = i % 2 === 0;
        sim.at(at, () => {
          if (sim.healed) return;
          if (cut) sim.isolate(id);
          else sim.healNetwork();
        });
      }
      sim.at(at + 50, () => sim.healNetwork());
      return;
    }
    case 'pause': {
      // A long pause of one member (GC, SIGSTOP): R3.
      const id = pickTarget();
      sim.pause(id);
      later(duration, () => sim.resume(id));
      return;
    }
    case 'lossy-network': {
      // A burst of loss, duplication and delay: P6, P5.
      const before = { ...sim.network };
      sim.network = {
        ...before,
        dropRate: Math.min(0.5, before.dropRate + 0.1 + 0.3 * intensity),
        dupRate: Math.min(0.3, before.dupRate + 0.1),
        maxDelayMs: before.maxDelayMs + rng.int(5, 120),
      };
      sim.faultsInjected++;
      later(duration, () => {
        if (!sim.healed) sim.network = before;
      });
      return;
    }
    case 'crash-majority': {
      // N4, N5: a majority at once, then back.
      const victims = shuffled().slice(0, Math.floor(ids.length / 2) + (rng.chance(0.5) ? 1 : 0));
      for (const id of victims) sim.crash(id, crashOptions());
      later(duration, () => {
        for (const id of victims) sim.restart(id);
      });
      return;
    }
    case 'crash-quick-restart': {
      const id = pickTarget();
      sim.crash(id, crashOptions());
      later(rng.int(20, 200), () => sim.restart(id));
      return;
    }
    case 'crash-leaders-in-a-row': {
      // Each new leader crashes soon after it is elected, mid-replication of its predecessors' entries.
      if (rng.chance(0.4)) crashLeadersInARow(sim, rng, rng.int(2, 4));
      else crashLeadersAsTheyStart(sim, rng, rng.int(2, 6));
      return;
    }
    case 'crash-in-ballot': {
      // Everyone alone until the leader steps down; then every link back but one pair's, so two
      // members stand in the same term and share voters. Members crash the moment they vote or stand
      // (before the vote or term is durable) and come back within the ballot, where the other
      // candidate's request of that same term may still reach them.
      sim.partition(ids.map((id) => [id]));
      const [a, b] = shuffled();
      const alone = rng.int(600, 1200);
      later(alone, () => {
        sim.healNetwork();
        if (sim.healed) return;
        sim.block(a, b);
        sim.block(b, a);
        crashInBallot(sim, rng, duration + 600);
      });
      later(alone + duration + 600, () => sim.healNetwork());
      return;
    }
    case 'stale-append-responses': {
      staleAppendResponses(sim, rng, duration);
      return;
    }
    case 'overwritten-tail': {
      overwrittenTail(sim, rng);
      return;
    }
    case 'late-messages': {
      const before = sim.network.lateRate ?? 0;
      sim.network = { ...sim.network, lateRate: 0.05 + 0.25 * rng.float() };
      sim.faultsInjected++;
      later(duration, () => {
        if (!sim.healed) sim.network = { ...sim.network, lateRate: before };
      });
      return;
    }
    case 'transfer-leadership': {
      const leader = sim.leader();
      if (leader === null) return;
      sim.network = { ...sim.network, echoTimeoutNowRate: 0.7 };
      sim.faultsInjected++;
      sim.input(leader, { type: 'TRANSFER_LEADERSHIP', to: rng.pick(others(leader)) });
      if (rng.chance(0.3)) thenStrike(rng.int(0, 60), () => sim.crash(leader, crashOptions()));
      later(duration, () => {
        sim.restart(leader);
        if (!sim.healed) sim.network = { ...sim.network, echoTimeoutNowRate: 0 };
      });
      return;
    }
    case 'stale-transfer-target': {
      staleTransferTarget(sim, rng);
      return;
    }
    case 'connection-loss': {
      const a = pickTarget();
      const count = rng.int(1, 3);
      for (let i = 0; i < count; i++)
        thenStrike(i * rng.int(0, 100), () => sim.disconnect(a, rng.pick(others(a))));
      return;
    }
    case 'suspend': {
      const id = pickTarget();
      sim.faultsInjected++;
      sim.input(id, { type: 'SUSPEND' });
      later(duration, () => sim.input(id, { type: 'RESUME' }));
      return;
    }
    case 'disk-stall': {
      const id = pickTarget();
      // Both flush queues, or one: then the other's flushes overtake it (an install durable after the
      // appends issued behind it, a vote after a later append).
      const which = rng.int(0, 2);
      sim.stallDisk(
        id,
        Math.min(duration, 900),
        which === 0 ? ['log', 'state'] : which === 1 ? ['log'] : ['state'],
      );
      if (rng.chance(0.5)) {
        sim.setDiskLatency(id, rng.int(5, 60));
        later(duration, () => sim.setDiskLatency(id, 0));
      }
      if (rng.chance(0.3))
        thenStrike(rng.int(0, Math.min(duration, 900)), () => sim.crash(id, crashOptions()));
      later(duration, () => sim.restart(id));
      return;
    }
    case 'lost-directory': {
      const id = rng.pick(ids);
      sim.loseDirectory(id);
      later(duration, () => sim.restart(id));
      return;
    }
    case 'partition-with-clients': {
      const order = shuffled();
      const cut = rng.int(1, ids.length - 1);
      const sides = [order.slice(0, cut), order.slice(cut)];
      sim.partition(sides);
      for (const client of sim.clientIds) {
        const side = rng.pick(sides);
        for (const id of ids) if (!side.includes(id)) sim.blockClient(client, id);
      }
      later(duration, () => sim.healNetwork());
      return;
    }
    case 'late-client-resends': {
      const before = sim.network.lateResendRate ?? 0;
      sim.network = { ...sim.network, lateResendRate: 0.2 + 0.5 * rng.float() };
      sim.faultsInjected++;
      later(duration, () => {
        if (!sim.healed) sim.network = { ...sim.network, lateResendRate: before };
      });
      return;
    }
  }
};
