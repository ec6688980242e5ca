// plan(): the moves that bring a fleet in line with the rules. Pure and deterministic: gateways are
// taken in name order and parties in id order whatever order they come in, ties are broken by the
// rules' tie-break, and nothing reads a clock (cluster time comes in the input).
//
// 1. Every party stays on its owner unless it must move: no owner (unassigned), an owner LOST or
//    unknown (owner-lost), DRAINING (owner-draining), failing a hard filter or over its capacity
//    (filter). Parties MOVING or CLOSING are in flight: they stay and count on their owner, except
//    that a MOVING party's load is its target's (where it lands), its owner keeping only its slot.
// 2. The parties that must move are placed, by id, on the best ACTIVE gateway that passes every hard
//    filter and has room; with none, they are listed as unplaced and stay (counted) where they are.
//    The rebalance budget does not apply.
// 3. Rebalance, if the pause since the last rebalancing round has run out and the imbalance of the
//    settled gateways exceeds the threshold (always, with a threshold of 0): OPEN parties move from the most utilised gateways to a
//    settled gateway where their total is higher than where they are (stickiness included), the
//    biggest gains first, at most movesPerRound of them, stopping once the imbalance is under the
//    threshold. Every such move raises the potential of the scores (a congestion game's potential),
//    so repeated plans reach a fixed point.

import { EPSILON, Fleet } from './fleet.ts';
import type { Move, MoveReason, PartyView, Plan, PlanInput } from './types.ts';

const byId = (a: PartyView, b: PartyView): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The parties by id (as given when they already are: the registry keeps them so). */
const inIdOrder = (parties: readonly PartyView[]): readonly PartyView[] => {
  for (let at = 1; at < parties.length; at++) {
    if (parties[at - 1].id > parties[at].id) return [...parties].sort(byId);
  }
  return parties;
};

interface Staying {
  readonly party: PartyView;
  readonly partyClass: number;
}

/** Where every party stands before any move: who stays where (loads counted), who must move and why. */
export interface Standing {
  readonly fleet: Fleet;
  /** Per gateway, the OPEN or OFFERED parties staying on it, by id. */
  readonly staying: Staying[][];
  /** Parties that must move, by id. */
  readonly mustMove: {
    readonly party: PartyView;
    readonly partyClass: number;
    readonly reason: MoveReason;
  }[];
  /** Imbalance with every party on its current owner (a MOVING one on its target), before any move. */
  readonly imbalanceNow: number;
}

/**
 * Where a party in flight lands: its target's index for a MOVING party whose owner is live (its load
 * counts there, its owner keeping a slot), else -1.
 */
export const landingOf = (fleet: Fleet, party: PartyView, owner: number): number => {
  if (party.state !== 'MOVING' || owner < 0 || fleet.gateways[owner].state === 'LOST') return -1;
  const target = fleet.indexOf(party.target ?? null);
  return target === owner ? -1 : target;
};

/** Step 1: the fleet's loads (every party on its owner until it moves) and the parties that must move. */
export const standing = (input: PlanInput): Standing => {
  const fleet = new Fleet(input);
  const parties = inIdOrder(input.parties);
  const staying: Staying[][] = Array.from({ length: fleet.count }, () => []);
  const inFlight = new Int32Array(fleet.count);
  const mustMove: { party: PartyView; partyClass: number; reason: MoveReason }[] = [];
  for (const party of parties) {
    const partyClass = fleet.classOf(party);
    const owner = fleet.indexOf(party.owner);
    // Every party counts on its owner until it has moved (a party that must move but finds no
    // place stays where it is, still holding its place).
    if (owner >= 0) fleet.add(owner);
    const state = owner < 0 ? 'LOST' : fleet.gateways[owner].state;
    if (party.owner === null) mustMove.push({ party, partyClass, reason: 'unassigned' });
    else if (state === 'LOST') mustMove.push({ party, partyClass, reason: 'owner-lost' });
    else if (party.state === 'MOVING' || party.state === 'CLOSING') {
      inFlight[owner]++;
      // A MOVING party lands on its target once its owner confirms the close: it counts there already
      // (as load and as a slot), or the target could be filled past its capacity meanwhile and later
      // rounds would move more towards it; on its owner it keeps a slot (the connection is still open).
      const target = landingOf(fleet, party, owner);
      if (target >= 0) {
        fleet.moving(owner, target);
        inFlight[target]++;
      }
    } else if (state === 'DRAINING') mustMove.push({ party, partyClass, reason: 'owner-draining' });
    else if (!fleet.passes(partyClass, owner)) mustMove.push({ party, partyClass, reason: 'filter' });
    else staying[owner].push({ party, partyClass });
  }
  let evictions = false;
  // Over capacity (a gateway re-registered smaller, or rules lowered maxUtilisation): the parties in
  // flight count first, then the staying ones by id; the rest move.
  for (let at = 0; at < fleet.count; at++) {
    const room = Math.max(0, fleet.capacity[at] - inFlight[at]);
    for (const evicted of staying[at].splice(room)) {
      mustMove.push({ ...evicted, reason: 'filter' });
      evictions = true;
    }
  }
  if (evictions) mustMove.sort((a, b) => byId(a.party, b.party));
  return { fleet, staying, mustMove, imbalanceNow: fleet.imbalance() };
};

/** Steps 2 and 3: place the parties that must move, then rebalance within the limits. */
export const plan = (input: PlanInput): Plan => {
  const { fleet, staying, mustMove, imbalanceNow } = standing(input);
  const moves: Move[] = [];
  const unplaced: string[] = [];
  for (const { party, partyClass, reason } of mustMove) {
    const target = fleet.best(party.id, partyClass, -1, -1, false);
    if (target.at < 0) {
      unplaced.push(party.id);
      continue;
    }
    const owner = fleet.indexOf(party.owner);
    if (owner >= 0) fleet.moving(owner, target.at);
    else fleet.add(target.at);
    moves.push({ party: party.id, from: party.owner, to: fleet.gateways[target.at].name, reason });
  }
  const limits = fleet.program.rebalance;
  const paused = input.lastRebalanceAtMs !== null && input.nowMs - input.lastRebalanceAtMs < limits.pauseMs;
  const rebalanceBudget = paused ? 0 : limits.movesPerRound;
  const used = rebalance(fleet, staying, rebalanceBudget, limits.imbalanceThreshold, moves);
  return {
    moves,
    rebalanceMovesUsed: used,
    rebalanceBudget,
    imbalanceBefore: imbalanceNow,
    imbalanceAfter: fleet.imbalance(),
    unplaced,
  };
};

/** What moving a staying party would gain: its best settled target's total minus its total where it is. */
const gainOf = (
  fleet: Fleet,
  { party, partyClass }: Staying,
  owner: number,
): { at: number; gain: number } => {
  fleet.remove(owner);
  const stay = fleet.total(partyClass, owner, owner);
  const target = fleet.best(party.id, partyClass, owner, owner, true);
  fleet.add(owner);
  return { at: target.at, gain: target.at < 0 ? 0 : target.total - stay };
};

const rebalance = (
  fleet: Fleet,
  staying: Staying[][],
  budget: number,
  threshold: number,
  moves: Move[],
): number => {
  let used = 0;
  // Balanced enough: nothing to do. A threshold of 0 means never balanced enough: every round looks
  // for moves that raise a party's total (after a change of scores, say), the fleet evenly loaded or not.
  const balanced = (): boolean => threshold > 0 && fleet.imbalance() <= threshold;
  if (budget === 0 || balanced()) return used;
  const sources: number[] = [];
  for (let at = 0; at < fleet.count; at++) if (fleet.active[at] && fleet.capacity[at] > 0) sources.push(at);
  const utilisation = (at: number): number => fleet.load[at] / fleet.capacity[at];
  sources.sort((a, b) => utilisation(b) - utilisation(a) || a - b);
  for (const source of sources) {
    if (used >= budget || balanced()) break;
    const candidates: { staying: Staying; gain: number }[] = [];
    for (const entry of staying[source]) {
      if (entry.party.state !== 'OPEN') continue;
      const { gain } = gainOf(fleet, entry, source);
      if (gain > EPSILON) candidates.push({ staying: entry, gain });
    }
    candidates.sort((a, b) => b.gain - a.gain || (a.staying.party.id < b.staying.party.id ? -1 : 1));
    for (const { staying: entry } of candidates) {
      if (used >= budget || balanced()) break;
      const { at, gain } = gainOf(fleet, entry, source);
      if (at < 0 || gain <= EPSILON) continue;
      fleet.moving(source, at);
      used++;
      moves.push({
        party: entry.party.id,
        from: entry.party.owner,
        to: fleet.gateways[at].name,
        reason: 'rebalance',
      });
    }
  }
  return used;
};
