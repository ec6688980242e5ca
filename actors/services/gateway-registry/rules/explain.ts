// explain(): why a party goes where it goes. Per gateway (in name order): each hard filter's verdict
// with its reason, and on the gateways passing them each score's value and weighted contribution,
// the total, and which gateway the scores pick. The loads are those of the fleet as it stands (every
// party that stays where it is counted, this one left out), as if this party were placed now.

import { filterVerdict, type PartyAttributes, staticScoreValue } from './compile.ts';
import type { Fleet } from './fleet.ts';
import { landingOf, standing } from './planner.ts';
import type {
  FilterVerdict,
  GatewayExplanation,
  PartyExplanation,
  PartyView,
  PlanInput,
  ScoreContribution,
} from './types.ts';

const scoreContributions = (
  fleet: Fleet,
  party: PartyAttributes,
  at: number,
  owner: number,
): ScoreContribution[] => {
  const program = fleet.program;
  const gateway = fleet.gateways[at];
  const byName = new Map<string, ScoreContribution>();
  for (const score of program.staticScores) {
    const { value, error } = staticScoreValue(score, party, gateway, fleet.contextOf(at));
    const row = { score: score.name, weight: score.weight, value, contribution: score.weight * value };
    byName.set(score.name, error === undefined ? row : { ...row, error });
  }
  let spread = 0;
  for (const score of program.dynamicScores) {
    let value: number;
    if (score.kind === 'least-loaded') value = fleet.leastLoadedValue(at);
    else if (score.kind === 'stickiness') value = at === owner ? 1 : 0;
    else value = fleet.spreadValue(spread++, at);
    byName.set(score.name, {
      score: score.name,
      weight: score.weight,
      value,
      contribution: score.weight * value,
    });
  }
  return program.scoreOrder.flatMap((name) => byName.get(name) ?? []);
};

const filterVerdicts = (fleet: Fleet, party: PartyAttributes, at: number): FilterVerdict[] => {
  const gateway = fleet.gateways[at];
  const verdicts: FilterVerdict[] = [
    gateway.state === 'ACTIVE'
      ? { filter: 'state', pass: true }
      : { filter: 'state', pass: false, reason: `${gateway.state}, not ACTIVE` },
  ];
  for (const filter of fleet.program.filters) {
    const { pass, reason } = filterVerdict(filter, party, gateway, fleet.contextOf(at));
    verdicts.push(
      reason === undefined ? { filter: filter.name, pass } : { filter: filter.name, pass, reason },
    );
  }
  verdicts.push(
    fleet.hasRoom(at)
      ? { filter: fleet.program.capacityName, pass: true }
      : {
          filter: fleet.program.capacityName,
          pass: false,
          reason:
            fleet.leaving[at] > 0
              ? `holds ${fleet.load[at]} of ${fleet.capacity[at]}, and ${fleet.leaving[at]} moving away until closed`
              : `holds ${fleet.load[at]} of ${fleet.capacity[at]}`,
        },
  );
  return verdicts;
};

/** Explain the choice for one party. Never throws: an unknown party is answered with a problem. */
export const explain = (input: PlanInput, partyId: string): PartyExplanation => {
  const party: PartyView | undefined = input.parties.find((candidate) => candidate.id === partyId);
  if (party === undefined) {
    return {
      party: partyId,
      owner: null,
      chosen: null,
      tieBreak: null,
      gateways: [],
      problem: 'no such party',
    };
  }
  const { fleet } = standing(input);
  const owner = fleet.indexOf(party.owner);
  // Leave this party out of its owner's load (a MOVING one: its target's, and its slot on the owner), as
  // if it were placed now.
  const landing = landingOf(fleet, party, owner);
  if (landing >= 0) {
    fleet.remove(landing);
    fleet.leaving[owner]--;
  } else if (owner >= 0) fleet.remove(owner);
  const partyClass = fleet.classOf(party);
  const best = fleet.best(party.id, partyClass, owner, -1, false);
  const attributes: PartyAttributes = { labels: party.labels, requires: party.requires };
  const gateways: GatewayExplanation[] = fleet.gateways.map((gateway, at) => {
    const filters = filterVerdicts(fleet, attributes, at);
    const eligible = filters.every((verdict) => verdict.pass);
    return {
      gateway: gateway.name,
      state: gateway.state,
      load: fleet.load[at],
      capacity: fleet.capacity[at],
      filters,
      scores: eligible ? scoreContributions(fleet, attributes, at, owner) : [],
      total: eligible ? fleet.total(partyClass, at, owner) : null,
      eligible,
      chosen: at === best.at,
    };
  });
  const tieBreak = best.tied
    ? fleet.program.tieBreak === 'hash'
      ? 'equal totals: the lowest hash of party id and gateway name wins'
      : 'equal totals: the lowest gateway name wins'
    : null;
  return {
    party: party.id,
    owner: party.owner,
    chosen: best.at < 0 ? null : fleet.gateways[best.at].name,
    tieBreak,
    gateways,
  };
};
