// The gateway registry: one behaviour actor (`gateways/registry/fleet`) holding the fleet's whole view —
// every gateway's and every party's statechart, the rules in force and the epoch counter — so a plan is
// computed and applied atomically, within the one log entry that made it necessary. (One actor per
// gateway and party would have to gather the fleet's view through messages, each a log entry, and a
// plan could then act on a view that had already changed.)
//
// What it does with each input:
// - REGISTER (a gateway, from its session): a new gateway is REGISTERING, admitted by the planning this
//   entry runs, and answered its duty list. From its own session again (a resync) it changes nothing but
//   answers the duty list; a name still held by another open session is refused. (Admission does not wait
//   for a cluster timer: a timer is due by cluster time, which stands still while a leader whose clock is
//   behind the last entry's timestamp leads, so only rebalancing and retries wait for timers.)
// - REPORT: OPENED / FAILED / CLOSED of a party under an epoch, from the owner's session; a stale epoch
//   (or another gateway) is refused. A party left UNASSIGNED is placed at the next round.
// - SESSION_CLOSED (the runtime, applying a SESSION_CLOSE entry): the gateway of that session is LOST;
//   moves towards it stop (TARGET_LOST), then its parties let go (OWNER_LOST: a MOVING party goes to its
//   target, the others are UNASSIGNED), and the planner places them at once, in the same entry.
// - DRAIN, SET_PARTIES, APPLY_RULES: change the fleet, the party list or the rules (versioned; refused
//   with `ifVersion` when the rules changed meanwhile), then plan at once.
// - PLAN, EXPLAIN, STATUS, SYNC: answer without changing anything.
// - ROUND (its own cluster timer): plan. Rounds continue while the planner has rebalancing left to do
//   (after the rules' pause) or a gateway is still settling, and a second after an OPEN failed (or at the
//   next SYNC of any gateway, whichever is first).
//
// A plan's moves become machine events: ASSIGN an UNASSIGNED party (OPEN to the new owner), MOVE an
// OFFERED or OPEN one (CLOSE to the old owner; the new one gets OPEN only once the old one confirmed or
// was lost). Each assignment draws a new epoch. Validation comes before any change, so a refused input
// changes nothing (the actor's failure policy keeps a behaviour as a throw left it).

import type { AnyEventObject } from 'xstate';
import type { ActorBehaviour, BehaviourContext, EventOrigin } from '../../actor-runtime/service.ts';
import type { GatewayCommand, Refusal } from './commands.ts';
import {
  type GatewayRecord,
  gatewayState,
  type Notify,
  type PartyRecord,
  partyState,
  type RegistryData,
  RegistryState,
} from './registry-state.ts';
import type { CompiledRules, Plan, PlanInput, RulesDocument } from './rules/index.ts';
import { compileRules, explain, parseRules, plan } from './rules/index.ts';

/** The registry's one actor: type and id. */
export const REGISTRY_ACTOR = { actorType: 'registry', actorId: 'fleet' } as const;

/** A party whose gateway could not open it is offered again after this long (cluster time). */
export const FAILED_RETRY_MS = 1000;

const ROUND_TIMER = 'round';

export interface RegistrySnapshot {
  readonly registry: RegistryData;
  readonly rulesVersion: number;
  readonly rules: RulesDocument;
  readonly lastRebalanceAtMs: number | null;
  readonly roundAtMs: number | null;
  readonly retryPending: boolean;
  /** Absent in snapshots taken before it existed (read as false). */
  readonly rebalanceWaiting?: boolean;
}

type Event = (GatewayCommand | { type: 'SESSION_CLOSED' } | { type: 'ROUND' }) & { origin?: EventOrigin };

const refuse = (ctx: BehaviourContext, reason: string): void =>
  ctx.reply({ refused: reason } satisfies Refusal);

const sessionOf = (origin: EventOrigin | undefined): number | null =>
  origin && 'session' in origin ? origin.session : null;

const defaultRules = (): RulesDocument => {
  const parsed = parseRules({});
  if (!parsed.ok) throw new Error('the default gateway rules do not parse');
  return parsed.rules;
};

export class Registry implements ActorBehaviour {
  private state = new RegistryState();
  private rulesVersion = 0;
  private rules: RulesDocument = defaultRules();
  private compiled: CompiledRules = compileRules(this.rules);
  private lastRebalanceAtMs: number | null = null;
  /** When the pending round timer fires (null: none pending). */
  private roundAtMs: number | null = null;
  /** An OPEN failed since the last planning: the next SYNC (or round) plans again. */
  private retryPending = false;
  /**
   * The last planning wanted to rebalance and could not, because the parties it would move or the room
   * it needs were in flight (OFFERED, MOVING, CLOSING): the next accepted report plans again.
   */
  private rebalanceWaiting = false;

  static restore(data: RegistrySnapshot): Registry {
    const registry = new Registry();
    registry.state = RegistryState.fromData(data.registry);
    registry.rulesVersion = data.rulesVersion;
    registry.rules = data.rules;
    registry.compiled = compileRules(data.rules);
    registry.lastRebalanceAtMs = data.lastRebalanceAtMs;
    registry.roundAtMs = data.roundAtMs;
    registry.retryPending = data.retryPending;
    registry.rebalanceWaiting = data.rebalanceWaiting ?? false;
    return registry;
  }

  snapshot(): RegistrySnapshot {
    return {
      registry: this.state.data(),
      rulesVersion: this.rulesVersion,
      rules: this.rules,
      lastRebalanceAtMs: this.lastRebalanceAtMs,
      roundAtMs: this.roundAtMs,
      retryPending: this.retryPending,
      rebalanceWaiting: this.rebalanceWaiting,
    };
  }

  apply(input: AnyEventObject, ctx: BehaviourContext): void {
    const event = input as Event;
    const notify: Notify = (session, message) => ctx.notify(session, message);
    switch (event.type) {
      case 'REGISTER':
        this.register(event, sessionOf(event.origin), ctx, notify);
        return;
      case 'REPORT':
        this.report(event, sessionOf(event.origin), ctx, notify);
        return;
      case 'SYNC': {
        const gateway = this.ownGateway(event.name, sessionOf(event.origin), ctx);
        if (!gateway) return;
        // The gateways' SYNCs pace a retry as well as the timer does (cluster time may stand still).
        if (this.retryPending) this.planAndApply(ctx, notify);
        ctx.reply(this.state.dutyList(gateway));
        return;
      }
      case 'DRAIN': {
        const gateway = this.state.gateways.get(event.name);
        if (!gateway) {
          refuse(ctx, `no gateway named '${event.name}' is registered`);
          return;
        }
        if (!this.state.gatewayCan(gateway, { type: 'DRAIN' })) {
          refuse(ctx, `gateway '${event.name}' is ${gatewayState(gateway)}: it cannot drain`);
          return;
        }
        this.state.stepGateway(gateway, { type: 'DRAIN' });
        this.planAndApply(ctx, notify);
        ctx.reply(this.state.dutyList(gateway).gateway);
        return;
      }
      case 'SET_PARTIES':
        this.setParties(event, ctx, notify);
        return;
      case 'APPLY_RULES':
        this.applyRules(event, ctx, notify);
        return;
      case 'PLAN': {
        const rules = this.rulesFor(event.rules, ctx);
        if (rules) ctx.reply({ rulesVersion: this.rulesVersion, plan: plan(this.planInput(rules, ctx)) });
        return;
      }
      case 'EXPLAIN': {
        const rules = this.rulesFor(event.rules, ctx);
        if (rules) ctx.reply(explain(this.planInput(rules, ctx), event.party));
        return;
      }
      case 'STATUS':
        ctx.reply(this.state.status(this.rulesVersion));
        return;
      case 'SESSION_CLOSED': {
        const origin = event.origin;
        if (origin && 'sessionClosed' in origin) this.sessionClosed(origin.sessionClosed, ctx, notify);
        return;
      }
      case 'ROUND':
        if (event.origin !== undefined) return; // only the registry's own timer starts a round
        this.roundAtMs = null;
        this.planAndApply(ctx, notify);
        return;
      default:
        refuse(
          ctx,
          `the gateway registry does not know ${JSON.stringify((input as { type?: unknown }).type)}`,
        );
        return;
    }
  }

  // ----- gateways ---------------------------------------------------------------------------------

  private register(
    command: Extract<GatewayCommand, { type: 'REGISTER' }>,
    session: number | null,
    ctx: BehaviourContext,
    notify: Notify,
  ): void {
    if (session === null) {
      refuse(ctx, 'REGISTER must come from a client session');
      return;
    }
    const { name, capabilities, labels, capacity } = command;
    let gateway = this.state.gateways.get(name);
    if (gateway && !this.state.gatewayCan(gateway, { type: 'REGISTER', session })) {
      const held = gateway.lifecycle.context.session;
      refuse(
        ctx,
        `gateway '${name}' is registered from session ${held}, which is still open; the name is free once that session closes or times out`,
      );
      return;
    }
    const session0 = this.state.gatewayOfSession(session);
    if (session0 && session0.name !== name) {
      refuse(ctx, `this session already registered gateway '${session0.name}': one gateway per session`);
      return;
    }
    if (!gateway) {
      gateway = this.state.addGateway(name, { capabilities, labels, capacity }, session, ctx.timestamp);
    } else {
      const rejoins = gatewayState(gateway) === 'LOST';
      this.state.stepGateway(gateway, { type: 'REGISTER', session });
      Object.assign(gateway, { capabilities, labels, capacity });
      if (rejoins) gateway.registeredAtMs = ctx.timestamp;
    }
    // It joins the fleet at once: this entry's planning admits it, and its answer lists what it got (an
    // OPEN pushed in this entry reaches it before the answer; a gateway acts on none before the answer).
    this.planAndApply(ctx, notify);
    ctx.reply(this.state.dutyList(gateway));
  }

  /** The gateway `name` if `session` is the one it registered from (else refused, undefined). */
  private ownGateway(name: string, session: number | null, ctx: BehaviourContext): GatewayRecord | undefined {
    const gateway = this.state.gateways.get(name);
    if (!gateway) {
      refuse(ctx, `no gateway named '${name}' is registered: REGISTER first`);
      return undefined;
    }
    if (gatewayState(gateway) === 'LOST' || gateway.lifecycle.context.session !== session) {
      refuse(
        ctx,
        `gateway '${name}' is not registered from this session (${gatewayState(gateway)}, session ${gateway.lifecycle.context.session}): REGISTER again`,
      );
      return undefined;
    }
    return gateway;
  }

  private report(
    command: Extract<GatewayCommand, { type: 'REPORT' }>,
    session: number | null,
    ctx: BehaviourContext,
    notify: Notify,
  ): void {
    const gateway = this.ownGateway(command.name, session, ctx);
    if (!gateway) return;
    const party = this.state.parties.get(command.party);
    if (!party) {
      refuse(ctx, `no party '${command.party}' is on the list`);
      return;
    }
    const event = { type: command.status, gateway: command.name, epoch: command.epoch };
    if (!this.state.stepParty(party, event, notify)) {
      const { owner, epoch } = party.assignment.context;
      refuse(
        ctx,
        `stale report: party '${party.id}' is ${partyState(party)}, owner ${owner ?? 'none'} at epoch ${epoch}; ` +
          `${command.status} from '${command.name}' at epoch ${command.epoch} changes nothing`,
      );
      return;
    }
    if (this.state.parties.has(party.id) && partyState(party) === 'UNASSIGNED') {
      if (command.status === 'FAILED') this.retryPending = true;
      this.requestRound(ctx, command.status === 'FAILED' ? FAILED_RETRY_MS : 0);
    } else if (this.rebalanceWaiting) {
      // A party settled (now movable, or its old owner's slot free): the waiting rebalance can go on.
      this.rebalanceWaiting = false;
      this.requestRound(ctx, 0);
    }
    const { owner, epoch } = party.assignment.context;
    ctx.reply({ party: party.id, state: partyState(party), owner, epoch });
  }

  private sessionClosed(session: number, ctx: BehaviourContext, notify: Notify): void {
    const gateway = this.state.gatewayOfSession(session);
    if (!gateway) return; // not a gateway's session
    this.state.stepGateway(gateway, { type: 'SESSION_CLOSED', session });
    const name = gateway.name;
    // Moves towards it stop first, so no party is handed to a lost gateway; then its own parties let go.
    // (Only parties that name it are offered the event; the machine decides what it means.)
    const involved = [...this.state.parties.values()].filter(
      (p) => p.assignment.context.owner === name || p.assignment.context.target === name,
    );
    for (const party of involved) this.state.stepParty(party, { type: 'TARGET_LOST', gateway: name }, notify);
    for (const party of involved) this.state.stepParty(party, { type: 'OWNER_LOST', gateway: name }, notify);
    this.planAndApply(ctx, notify);
  }

  // ----- parties and rules ------------------------------------------------------------------------

  private setParties(
    command: Extract<GatewayCommand, { type: 'SET_PARTIES' }>,
    ctx: BehaviourContext,
    notify: Notify,
  ): void {
    const wanted = new Map(command.parties.map((p) => [p.id, p]));
    if (wanted.size !== command.parties.length) {
      const seen = new Set<string>();
      const twice = command.parties.find((p) => seen.size === seen.add(p.id).size);
      refuse(ctx, `party '${twice?.id}' is listed twice: give each party one entry`);
      return;
    }
    let added = 0;
    let removed = 0;
    let changed = 0;
    for (const party of [...this.state.parties.values()]) {
      const definition = wanted.get(party.id);
      if (definition === undefined) {
        if (!party.retired) removed++;
        this.retire(party, notify);
        continue;
      }
      const endpointChanged = definition.endpoint !== party.endpoint;
      if (endpointChanged || party.retired || !sameData(definition, party)) changed++;
      Object.assign(party, { labels: definition.labels, requires: definition.requires, retired: false });
      if (endpointChanged) {
        // The connection must be made again to the new endpoint: closed first, placed again after.
        this.state.stepParty(party, { type: 'RELEASE' }, notify);
        party.endpoint = definition.endpoint;
      }
    }
    for (const definition of command.parties) {
      if (this.state.parties.has(definition.id)) continue;
      this.state.addParty(definition);
      added++;
    }
    this.planAndApply(ctx, notify);
    ctx.reply({ parties: command.parties.length, added, removed, changed });
  }

  /** Off the list: an UNASSIGNED party goes now; one a gateway holds is closed first, then goes. */
  private retire(party: PartyRecord, notify: Notify): void {
    party.retired = true;
    if (partyState(party) === 'UNASSIGNED') this.state.parties.delete(party.id);
    else this.state.stepParty(party, { type: 'RELEASE' }, notify);
  }

  private applyRules(
    command: Extract<GatewayCommand, { type: 'APPLY_RULES' }>,
    ctx: BehaviourContext,
    notify: Notify,
  ): void {
    if (command.ifVersion !== undefined && command.ifVersion !== this.rulesVersion) {
      refuse(
        ctx,
        `the rules in force are version ${this.rulesVersion}, not ${command.ifVersion}: they changed since your plan; plan again`,
      );
      return;
    }
    const parsed = parseRules(command.rules);
    if (!parsed.ok) {
      refuse(
        ctx,
        `invalid rules: ${parsed.problems.map((p) => `${p.path || '(document)'}: ${p.message}`).join('; ')}`,
      );
      return;
    }
    const compiled = compileRules(parsed.rules);
    this.rules = parsed.rules;
    this.compiled = compiled;
    this.rulesVersion++;
    this.planAndApply(ctx, notify);
    ctx.reply({ version: this.rulesVersion });
  }

  /** The rules a dry run uses: the ones given (validated), or those in force. */
  private rulesFor(given: unknown, ctx: BehaviourContext): CompiledRules | null {
    if (given === undefined) return this.compiled;
    const parsed = parseRules(given);
    if (parsed.ok) return compileRules(parsed.rules);
    refuse(
      ctx,
      `invalid rules: ${parsed.problems.map((p) => `${p.path || '(document)'}: ${p.message}`).join('; ')}`,
    );
    return null;
  }

  // ----- planning ---------------------------------------------------------------------------------

  private planInput(rules: CompiledRules, ctx: BehaviourContext, admitting = false): PlanInput {
    const gateways = this.state.gatewayViews();
    return {
      // At a round, REGISTERING gateways are admitted: the planner sees them ACTIVE.
      gateways: admitting
        ? gateways.map((g) => (g.state === 'REGISTERING' ? { ...g, state: 'ACTIVE' as const } : g))
        : gateways,
      parties: this.state.partyViews(),
      rules,
      nowMs: ctx.timestamp,
      lastRebalanceAtMs: this.lastRebalanceAtMs,
    };
  }

  /** Admit REGISTERING gateways, plan with the rules in force, carry the moves out, schedule the next round. */
  private planAndApply(ctx: BehaviourContext, notify: Notify): void {
    const result = plan(this.planInput(this.compiled, ctx, true)); // may throw: nothing changed yet
    this.retryPending = false;
    for (const gateway of this.state.gateways.values())
      if (gatewayState(gateway) === 'REGISTERING') this.state.stepGateway(gateway, { type: 'ADMIT' });
    for (const move of result.moves) this.carryOut(move, notify);
    if (result.rebalanceMovesUsed > 0) this.lastRebalanceAtMs = ctx.timestamp;
    this.rebalanceWaiting = this.waitsForInFlight(result);
    this.scheduleFollowUp(result, ctx);
  }

  private carryOut(move: Plan['moves'][number], notify: Notify): void {
    const party = this.state.parties.get(move.party);
    const to = this.state.gateways.get(move.to);
    if (!party || party.retired || !to || gatewayState(to) !== 'ACTIVE') return;
    const state = partyState(party);
    const { owner } = party.assignment.context;
    if (state === 'UNASSIGNED') {
      this.state.stepParty(party, { type: 'ASSIGN', to: move.to, epoch: this.state.drawEpoch() }, notify);
    } else if ((state === 'OFFERED' || state === 'OPEN') && owner === move.from && owner !== move.to) {
      this.state.stepParty(party, { type: 'MOVE', to: move.to, epoch: this.state.drawEpoch() }, notify);
    }
    // MOVING and CLOSING parties wait for their owner: the planner places them again once they settle.
  }

  /** Another round when rebalancing has more to do after the pause, or when a gateway finishes settling. */
  private scheduleFollowUp(result: Plan, ctx: BehaviourContext): void {
    const { pauseMs, imbalanceThreshold, settlingMs, movesPerRound } = this.rules.rebalance;
    const now = ctx.timestamp;
    let next: number | null = null;
    const paused =
      movesPerRound > 0 && result.rebalanceBudget === 0 && result.imbalanceAfter > imbalanceThreshold;
    if (result.rebalanceMovesUsed > 0 || paused) next = (this.lastRebalanceAtMs ?? now) + pauseMs;
    for (const gateway of this.state.gateways.values()) {
      const settledAt = gateway.registeredAtMs + settlingMs;
      if (gatewayState(gateway) === 'ACTIVE' && settledAt > now)
        next = Math.min(next ?? settledAt, settledAt);
    }
    if (next !== null) this.requestRound(ctx, Math.max(0, next - now));
  }

  /**
   * Whether a round that could rebalance (its budget open, the imbalance above the threshold) moved
   * nothing while parties were in flight: only OPEN parties move, and a gateway a MOVING party is
   * leaving has no room for another until the close is confirmed, so it may move once they settle.
   * Without this, nothing planned again and the fleet stayed unbalanced (no timer was left pending).
   */
  private waitsForInFlight(result: Plan): boolean {
    if (result.rebalanceBudget === 0 || result.rebalanceMovesUsed > 0) return false;
    if (result.imbalanceAfter <= this.rules.rebalance.imbalanceThreshold) return false;
    for (const party of this.state.parties.values()) {
      const state = partyState(party);
      if (state === 'OFFERED' || state === 'MOVING' || state === 'CLOSING') return true;
    }
    return false;
  }

  /** A round `delayMs` from now, unless one is already due sooner. */
  private requestRound(ctx: BehaviourContext, delayMs: number): void {
    const at = ctx.timestamp + delayMs;
    if (this.roundAtMs !== null && this.roundAtMs <= at) return;
    ctx.schedule(ROUND_TIMER, delayMs, { type: 'ROUND' });
    this.roundAtMs = at;
  }
}

const sameData = (definition: { labels: object; requires: readonly string[] }, party: PartyRecord): boolean =>
  JSON.stringify(definition.labels) === JSON.stringify(party.labels) &&
  JSON.stringify(definition.requires) === JSON.stringify(party.requires);
