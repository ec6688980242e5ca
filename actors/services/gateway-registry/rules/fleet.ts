// The planner's working state for one plan: the gateways in name order with their effective
// capacities and running loads (and the loads of each spread label's groups), and the static part of
// every (party class, gateway) pair — the filters' verdict and the static scores' weighted sum —
// computed once per distinct (party labels and requires, gateway) and kept in flat typed arrays.
// A party's total on a gateway is that static sum plus the dynamic scores at the running loads.

import {
  filterVerdict,
  gatewayContext,
  type PartyAttributes,
  programOf,
  type RulesProgram,
  staticScoreValue,
} from './compile.ts';
import type { ExpressionContext } from './expressions.ts';
import type { GatewayView, PartyView, PlanInput } from './types.ts';

/** Totals closer than this are equal (the tie-break decides); a move must gain more than this. */
export const EPSILON = 1e-9;

const byName = (a: GatewayView, b: GatewayView): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Capacities are held in 32-bit arrays: a larger one (never a real gateway's) counts as this. */
const MAX_CAPACITY = 1_000_000_000;

const effectiveCapacity = (capacity: number, maxUtilisation: number): number =>
  Number.isFinite(capacity) && capacity > 0
    ? Math.floor(Math.min(capacity, MAX_CAPACITY) * maxUtilisation + EPSILON)
    : 0;

/** The class of a party whose every label may matter: its labels and requires, in a canonical order. */
const fullClassKey = (party: PartyView): string => {
  const keys = Object.keys(party.labels).sort();
  let key = '';
  for (const name of keys) key += `${name}\u0001${party.labels[name]}\u0002`;
  return `${key}\u0003${requiresKey(party.requires)}`;
};

const requiresKey = (requires: readonly string[]): string =>
  requires.length === 0 ? '' : requires.length === 1 ? requires[0] : [...requires].sort().join('\u0002');

/** A missing label, distinct from every string value in the class trie. */
const MISSING = Symbol('missing');
/** Where the class id sits in a trie node. */
const CLASS = Symbol('class');
type TrieNode = Map<string | symbol, TrieNode | number>;

/** FNV-1a (32 bits) of a string: the same on every member. */
export const fnv1a = (text: string): number => {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
};

/** The 'hash' tie-break's key of a (party, gateway) pair from their names' hashes; the lowest wins. */
export const tieKey = (partyHash: number, gatewayHash: number): number => {
  let hash = (partyHash ^ Math.imul(gatewayHash, 0x9e3779b1)) >>> 0;
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) >>> 0;
};

interface SpreadState {
  readonly weight: number;
  /** Group of each gateway (by its value of the label; an unset label is a group of its own). */
  readonly group: Int32Array;
  readonly groupLoad: Int32Array;
  readonly groupCapacity: Float64Array;
  /** The ACTIVE gateways of each group. */
  readonly members: number[][];
}

export class Fleet {
  readonly program: RulesProgram;
  readonly gateways: readonly GatewayView[];
  readonly count: number;
  readonly capacity: Int32Array;
  readonly load: Int32Array;
  /**
   * MOVING parties leaving each gateway: their load already counts on their target, but the connection
   * stays open here until the close is confirmed, so each still takes a slot of this gateway's capacity.
   */
  readonly leaving: Int32Array;
  /** 1 for an ACTIVE gateway (a placement target). */
  readonly active: Uint8Array;
  /** 1 for an ACTIVE gateway past its settling time (a rebalance target, counted in the imbalance). */
  readonly settled: Uint8Array;
  private readonly index = new Map<string, number>();
  private readonly contexts: ExpressionContext['gateway'][];
  private readonly spreads: SpreadState[];
  private readonly leastLoadedWeight: number;
  private readonly stickinessWeight: number;
  private readonly classes = new Map<string, number>();
  private readonly trie: TrieNode = new Map();
  private readonly representatives: PartyAttributes[] = [];
  /** Per ACTIVE gateway, the dynamic scores' weighted sum at the running loads (stickiness aside). */
  private readonly dynamic: Float64Array;
  /** FNV-1a of each gateway's name (the 'hash' tie-break). */
  private readonly nameHash: Uint32Array;
  private pass = new Uint8Array(0);
  private staticTotal = new Float64Array(0);

  constructor(input: PlanInput) {
    this.program = programOf(input.rules);
    this.gateways = [...input.gateways].sort(byName);
    const count = this.gateways.length;
    this.count = count;
    this.capacity = new Int32Array(count);
    this.load = new Int32Array(count);
    this.leaving = new Int32Array(count);
    this.active = new Uint8Array(count);
    this.settled = new Uint8Array(count);
    const settlingMs = this.program.rebalance.settlingMs;
    this.gateways.forEach((gateway, at) => {
      this.index.set(gateway.name, at);
      this.capacity[at] = effectiveCapacity(gateway.capacity, this.program.maxUtilisation);
      const active = gateway.state === 'ACTIVE';
      this.active[at] = active ? 1 : 0;
      this.settled[at] = active && input.nowMs - gateway.registeredAtMs >= settlingMs ? 1 : 0;
    });
    this.contexts = this.gateways.map(gatewayContext);
    this.nameHash = Uint32Array.from(this.gateways, (gateway) => fnv1a(gateway.name));
    let leastLoaded = 0;
    let stickiness = 0;
    this.spreads = [];
    for (const score of this.program.dynamicScores) {
      if (score.kind === 'least-loaded') leastLoaded += score.weight;
      else if (score.kind === 'stickiness') stickiness += score.weight;
      else if (score.kind === 'spread') this.spreads.push(this.spreadState(score.label, score.weight));
    }
    this.leastLoadedWeight = leastLoaded;
    this.stickinessWeight = stickiness;
    this.dynamic = new Float64Array(count);
    for (let at = 0; at < count; at++) if (this.active[at]) this.dynamic[at] = this.dynamicTotal(at);
  }

  private spreadState(label: string, weight: number): SpreadState {
    const values = new Map<string, number>();
    const group = new Int32Array(this.count);
    this.gateways.forEach((gateway, at) => {
      const value = Object.hasOwn(gateway.labels, label) ? `=${gateway.labels[label]}` : '';
      let id = values.get(value);
      if (id === undefined) {
        id = values.size;
        values.set(value, id);
      }
      group[at] = id;
    });
    const groupCapacity = new Float64Array(values.size);
    const members: number[][] = Array.from({ length: values.size }, () => []);
    for (let at = 0; at < this.count; at++) {
      if (this.active[at] === 0) continue;
      groupCapacity[group[at]] += this.capacity[at];
      members[group[at]].push(at);
    }
    return { weight, group, groupLoad: new Int32Array(values.size), groupCapacity, members };
  }

  /** A gateway's index in name order, or -1. */
  indexOf(name: string | null): number {
    return name === null ? -1 : (this.index.get(name) ?? -1);
  }

  /** The class of a party, its row of static verdicts and scores computed on first sight. */
  classOf(party: PartyView): number {
    const labelKeys = this.program.partyLabelKeys;
    if (labelKeys === null) {
      const key = fullClassKey(party);
      const known = this.classes.get(key);
      if (known !== undefined) return known;
      const id = this.newClass(party);
      this.classes.set(key, id);
      return id;
    }
    // Only the labels the rules read matter: walk a trie of their values (no key string built).
    let node = this.trie;
    for (const key of labelKeys) {
      const value = Object.hasOwn(party.labels, key) ? party.labels[key] : MISSING;
      let next = node.get(value) as TrieNode | undefined;
      if (next === undefined) {
        next = new Map();
        node.set(value, next);
      }
      node = next;
    }
    const requires = requiresKey(party.requires);
    let leaf = node.get(requires) as TrieNode | undefined;
    if (leaf === undefined) {
      leaf = new Map();
      node.set(requires, leaf);
    }
    const known = leaf.get(CLASS) as number | undefined;
    if (known !== undefined) return known;
    const id = this.newClass(party);
    leaf.set(CLASS, id);
    return id;
  }

  /** A new class with this party as its representative: its row of static verdicts and scores. */
  private newClass(party: PartyView): number {
    const id = this.representatives.length;
    const attributes: PartyAttributes = { labels: party.labels, requires: party.requires };
    this.representatives.push(attributes);
    if (this.pass.length < (id + 1) * this.count) {
      const grown = Math.max(16, id * 2) * this.count;
      const pass = new Uint8Array(grown);
      pass.set(this.pass);
      const total = new Float64Array(grown);
      total.set(this.staticTotal);
      this.pass = pass;
      this.staticTotal = total;
    }
    const base = id * this.count;
    for (let at = 0; at < this.count; at++) {
      const gateway = this.gateways[at];
      const context = this.contexts[at];
      let pass = 1;
      for (const filter of this.program.filters) {
        if (!filterVerdict(filter, attributes, gateway, context).pass) {
          pass = 0;
          break;
        }
      }
      this.pass[base + at] = pass;
      let total = 0;
      if (pass)
        for (const score of this.program.staticScores) {
          total += score.weight * staticScoreValue(score, attributes, gateway, context).value;
        }
      this.staticTotal[base + at] = total;
    }
    return id;
  }

  /** Whether a party of this class passes the static filters on the gateway (its state aside). */
  passes(partyClass: number, at: number): boolean {
    return this.pass[partyClass * this.count + at] === 1;
  }

  /** Whether the gateway has room for one more party. */
  hasRoom(at: number): boolean {
    return this.load[at] + this.leaving[at] < this.capacity[at];
  }

  add(at: number): void {
    this.load[at]++;
    this.loadChanged(at, 1);
  }

  remove(at: number): void {
    this.load[at]--;
    this.loadChanged(at, -1);
  }

  /** A MOVING party counted on its owner goes to its target's load, and keeps a slot on the owner. */
  moving(owner: number, target: number): void {
    this.remove(owner);
    this.leaving[owner]++;
    this.add(target);
  }

  /** Keep the dynamic scores' cached sum current: this gateway's, and its spread groups' members'. */
  private loadChanged(at: number, change: number): void {
    if (this.active[at] === 0) return;
    if (this.spreads.length === 0) {
      this.dynamic[at] = this.dynamicTotal(at);
      return;
    }
    for (const spread of this.spreads) {
      const group = spread.group[at];
      spread.groupLoad[group] += change;
      for (const member of spread.members[group]) this.dynamic[member] = this.dynamicTotal(member);
    }
  }

  private dynamicTotal(at: number): number {
    let total = this.leastLoadedWeight === 0 ? 0 : this.leastLoadedWeight * this.leastLoadedValue(at);
    for (let spread = 0; spread < this.spreads.length; spread++) {
      total += this.spreads[spread].weight * this.spreadValue(spread, at);
    }
    return total;
  }

  /** least-loaded's value on a gateway, for one party more than it holds. */
  leastLoadedValue(at: number): number {
    const capacity = this.capacity[at];
    return capacity === 0 ? 0 : Math.min(1, Math.max(0, 1 - (this.load[at] + 1) / capacity));
  }

  /** A spread score's value on a gateway, for one party more than its group holds. */
  spreadValue(spread: number, at: number): number {
    const state = this.spreads[spread];
    const group = state.group[at];
    const capacity = state.groupCapacity[group];
    return capacity === 0 ? 0 : Math.min(1, Math.max(0, 1 - (state.groupLoad[group] + 1) / capacity));
  }

  /** A party's total on a gateway at the running loads (the party itself not counted in them). */
  total(partyClass: number, at: number, owner: number): number {
    const total = this.staticTotal[partyClass * this.count + at] + this.dynamic[at];
    return at === owner ? total + this.stickinessWeight : total;
  }

  /**
   * The best target for a party: an ACTIVE gateway (settled too, when asked) passing the filters with
   * room, other than `except`; the highest total, ties broken by the rules' tie-break. -1 when none.
   */
  best(party: string, partyClass: number, owner: number, except: number, settledOnly: boolean): BestTarget {
    let best = -1;
    let bestTotal = Number.NEGATIVE_INFINITY;
    let bestKey = 0;
    let tied = false;
    const byHash = this.program.tieBreak === 'hash';
    const partyHash = byHash ? fnv1a(party) : 0;
    const targets = settledOnly ? this.settled : this.active;
    const base = partyClass * this.count;
    for (let at = 0; at < this.count; at++) {
      if (
        at === except ||
        targets[at] === 0 ||
        this.pass[base + at] === 0 ||
        this.load[at] + this.leaving[at] >= this.capacity[at]
      ) {
        continue;
      }
      let total = this.staticTotal[base + at] + this.dynamic[at];
      if (at === owner) total += this.stickinessWeight;
      if (total > bestTotal + EPSILON) {
        best = at;
        bestTotal = total;
        bestKey = byHash ? tieKey(partyHash, this.nameHash[at]) : at;
        tied = false;
      } else if (total >= bestTotal - EPSILON) {
        tied = true;
        // Gateways come in name order, so with the 'name' tie-break the first one stays.
        const key = byHash ? tieKey(partyHash, this.nameHash[at]) : at;
        if (key < bestKey) {
          best = at;
          bestTotal = Math.max(bestTotal, total);
          bestKey = key;
        }
      }
    }
    return { at: best, total: bestTotal, tied };
  }

  /** Highest minus lowest utilisation (load / capacity) of the settled ACTIVE gateways. */
  imbalance(): number {
    let highest = Number.NEGATIVE_INFINITY;
    let lowest = Number.POSITIVE_INFINITY;
    for (let at = 0; at < this.count; at++) {
      if (this.settled[at] === 0 || this.capacity[at] === 0) continue;
      const utilisation = this.load[at] / this.capacity[at];
      if (utilisation > highest) highest = utilisation;
      if (utilisation < lowest) lowest = utilisation;
    }
    return highest > lowest ? highest - lowest : 0;
  }

  /** The gateway as expressions see it (for explain). */
  contextOf(at: number): ExpressionContext['gateway'] {
    return this.contexts[at];
  }
}

export interface BestTarget {
  readonly at: number;
  readonly total: number;
  /** More than one gateway had the best total. */
  readonly tied: boolean;
}
