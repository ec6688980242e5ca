// The gateway registry's replicated state: every gateway and every party, each advanced through its own
// statechart (machines/gateway-lifecycle.ts, machines/party-assignment.ts) with XState's pure
// `transition()`, plus the rules in force and the epoch counter. The machines decide; this file keeps
// their persisted states (value and context, plain data), carries out the orders a party's machine
// gives (`sendOpen`, `sendClose`: a notification to the gateway's session), and builds the views the
// planner and the operators read. Iteration follows insertion order, which the log fixes and the
// snapshot keeps, so every member steps the same records in the same order.

import type { SnapshotFrom } from 'xstate';
import {
  type GatewayLifecycleContext,
  type GatewayLifecycleEvent,
  type GatewayState,
  gatewayLifecycleMachine,
} from '../../../machines/gateway-lifecycle.ts';
import {
  type PartyAssignmentContext,
  type PartyAssignmentEvent,
  type PartyOrder,
  type PartyState,
  partyAssignmentMachine,
} from '../../../machines/party-assignment.ts';
import type {
  Duty,
  DutyList,
  GatewayOrder,
  GatewayStatus,
  PartyDefinition,
  PartyStatus,
  RegistryStatus,
} from './commands.ts';
import { stepperFor } from './machine-step.ts';
import type { GatewayView, PartyView } from './rules/types.ts';

/**
 * A machine's state as the registry keeps it: plain data, turned into an XState snapshot only to step it
 * (10,000 live snapshots cost far more memory and collection time than the steps themselves).
 */
export interface Persisted<Value extends string, Context> {
  readonly value: Value;
  readonly context: Context;
}
type GatewayLifecycle = Persisted<GatewayState, GatewayLifecycleContext>;
type PartyAssignment = Persisted<PartyState, PartyAssignmentContext>;

export interface GatewayRecord {
  readonly name: string;
  capabilities: readonly string[];
  labels: Readonly<Record<string, string>>;
  capacity: number;
  registeredAtMs: number;
  lifecycle: GatewayLifecycle;
}

export interface PartyRecord {
  readonly id: string;
  endpoint: string;
  labels: Readonly<Record<string, string>>;
  requires: readonly string[];
  assignment: PartyAssignment;
  /** Taken off the party list while a gateway still held it: deleted once UNASSIGNED. */
  retired: boolean;
}

/** Delivers a message to a client session (the behaviour context's `notify`). */
export type Notify = (sessionId: number, message: GatewayOrder) => void;

const stepGatewayMachine = stepperFor(gatewayLifecycleMachine, { session: 0 });
const stepPartyMachine = stepperFor(partyAssignmentMachine);

const INITIAL_ASSIGNMENT: PartyAssignment = {
  value: 'UNASSIGNED',
  context: { owner: null, epoch: 0, target: null, targetEpoch: 0 },
};

const gatewaySnapshot = (lifecycle: GatewayLifecycle): SnapshotFrom<typeof gatewayLifecycleMachine> =>
  gatewayLifecycleMachine.resolveState(lifecycle);
const partySnapshot = (assignment: PartyAssignment): SnapshotFrom<typeof partyAssignmentMachine> =>
  partyAssignmentMachine.resolveState(assignment);
const persisted = <Value extends string, Context>(snapshot: {
  value: unknown;
  context: Context;
}): Persisted<Value, Context> => ({ value: snapshot.value as Value, context: snapshot.context });

export const gatewayState = (gateway: GatewayRecord): GatewayState => gateway.lifecycle.value;
export const partyState = (party: PartyRecord): PartyState => party.assignment.value;

/** The persisted form of the registry (plain data; the machines' states as value + context). */
export interface RegistryData {
  readonly version: 1;
  readonly nextEpoch: number;
  readonly gateways: {
    name: string;
    capabilities: readonly string[];
    labels: Readonly<Record<string, string>>;
    capacity: number;
    registeredAtMs: number;
    state: GatewayState;
    session: number;
  }[];
  readonly parties: {
    id: string;
    endpoint: string;
    labels: Readonly<Record<string, string>>;
    requires: readonly string[];
    state: PartyState;
    assignment: PartyAssignmentContext;
    retired: boolean;
  }[];
}

export class RegistryState {
  readonly gateways = new Map<string, GatewayRecord>();
  readonly parties = new Map<string, PartyRecord>();
  /** The next fencing epoch: one counter for every assignment, so an older epoch never matches again. */
  nextEpoch = 1;

  drawEpoch(): number {
    return this.nextEpoch++;
  }

  /** The live gateway registered from `session`, if any. */
  gatewayOfSession(session: number): GatewayRecord | undefined {
    for (const gateway of this.gateways.values()) {
      if (gateway.lifecycle.context.session === session && gatewayState(gateway) !== 'LOST') return gateway;
    }
    return undefined;
  }

  addGateway(
    name: string,
    attributes: Pick<GatewayRecord, 'capabilities' | 'labels' | 'capacity'>,
    session: number,
    nowMs: number,
  ): GatewayRecord {
    const lifecycle: GatewayLifecycle = { value: 'REGISTERING', context: { session } };
    const record: GatewayRecord = { name, ...attributes, registeredAtMs: nowMs, lifecycle };
    this.gateways.set(name, record);
    return record;
  }

  /** Whether the gateway's machine takes `event` in its state. */
  gatewayCan(gateway: GatewayRecord, event: GatewayLifecycleEvent): boolean {
    return gatewaySnapshot(gateway.lifecycle).can(event);
  }

  stepGateway(gateway: GatewayRecord, event: GatewayLifecycleEvent): void {
    gateway.lifecycle = persisted(stepGatewayMachine(gatewaySnapshot(gateway.lifecycle), event)[0]);
  }

  /** A new party, UNASSIGNED. */
  addParty(definition: PartyDefinition): PartyRecord {
    const record: PartyRecord = { ...definition, assignment: INITIAL_ASSIGNMENT, retired: false };
    this.parties.set(definition.id, record);
    return record;
  }

  partyCan(party: PartyRecord, event: PartyAssignmentEvent): boolean {
    return partySnapshot(party.assignment).can(event);
  }

  /**
   * Step a party's machine and carry out the orders it gives: OPEN and CLOSE go to the named gateway's
   * session (nowhere if it is LOST: its session is gone, and its connections with it). A retired party
   * that became UNASSIGNED is deleted. False if the machine did not take the event.
   */
  stepParty(party: PartyRecord, event: PartyAssignmentEvent, notify: Notify): boolean {
    const snapshot = partySnapshot(party.assignment);
    if (!snapshot.can(event)) return false;
    const [next, actions] = stepPartyMachine(snapshot, event);
    party.assignment = persisted(next);
    for (const action of actions) {
      if (action.type !== 'sendOpen' && action.type !== 'sendClose') continue;
      const { gateway: name, epoch } = action.params as PartyOrder;
      const gateway = this.gateways.get(name);
      if (!gateway || gatewayState(gateway) === 'LOST') continue;
      const session = gateway.lifecycle.context.session;
      notify(
        session,
        action.type === 'sendOpen'
          ? { type: 'OPEN', party: party.id, epoch, endpoint: party.endpoint }
          : { type: 'CLOSE', party: party.id, epoch },
      );
    }
    if (party.retired && partyState(party) === 'UNASSIGNED') this.parties.delete(party.id);
    return true;
  }

  /** What `gateway` should hold and let go of now: its whole duty list (for REGISTER and SYNC). */
  dutyList(gateway: GatewayRecord): DutyList {
    const epochs: Duty[] = [];
    for (const party of this.parties.values()) {
      const { owner, epoch } = party.assignment.context;
      if (owner !== gateway.name) continue;
      const state = partyState(party);
      const action = state === 'OFFERED' || state === 'OPEN' ? 'OPEN' : 'CLOSE';
      epochs.push({ party: party.id, epoch, endpoint: party.endpoint, action });
    }
    return {
      gateway: {
        name: gateway.name,
        state: gatewayState(gateway),
        session: gateway.lifecycle.context.session,
      },
      epochs,
    };
  }

  gatewayViews(): GatewayView[] {
    return [...this.gateways.values()].map((g) => ({
      name: g.name,
      capabilities: g.capabilities,
      labels: g.labels,
      capacity: g.capacity,
      state: gatewayState(g),
      registeredAtMs: g.registeredAtMs,
    }));
  }

  /** The parties the planner places: every party still on the list (a retired one only closes). */
  partyViews(): PartyView[] {
    const views: PartyView[] = [];
    for (const p of this.parties.values()) {
      if (p.retired) continue;
      views.push({
        id: p.id,
        labels: p.labels,
        requires: p.requires,
        owner: p.assignment.context.owner,
        state: partyState(p),
        target: p.assignment.context.target,
      });
    }
    return views;
  }

  status(rulesVersion: number): RegistryStatus {
    const held = new Map<string, number>();
    for (const p of this.parties.values()) {
      const owner = p.assignment.context.owner;
      if (owner !== null) held.set(owner, (held.get(owner) ?? 0) + 1);
    }
    const gateways: GatewayStatus[] = [...this.gateways.values()].map((g) => ({
      name: g.name,
      state: gatewayState(g),
      session: g.lifecycle.context.session,
      capabilities: g.capabilities,
      labels: g.labels,
      capacity: g.capacity,
      registeredAtMs: g.registeredAtMs,
      parties: held.get(g.name) ?? 0,
    }));
    const parties: PartyStatus[] = [...this.parties.values()].map((p) => ({
      id: p.id,
      endpoint: p.endpoint,
      owner: p.assignment.context.owner,
      state: partyState(p),
      epoch: p.assignment.context.epoch,
      target: p.assignment.context.target,
    }));
    return { rulesVersion, gateways, parties };
  }

  data(): RegistryData {
    return {
      version: 1,
      nextEpoch: this.nextEpoch,
      gateways: [...this.gateways.values()].map((g) => ({
        name: g.name,
        capabilities: g.capabilities,
        labels: g.labels,
        capacity: g.capacity,
        registeredAtMs: g.registeredAtMs,
        state: gatewayState(g),
        session: g.lifecycle.context.session,
      })),
      parties: [...this.parties.values()].map((p) => ({
        id: p.id,
        endpoint: p.endpoint,
        labels: p.labels,
        requires: p.requires,
        state: partyState(p),
        assignment: p.assignment.context,
        retired: p.retired,
      })),
    };
  }

  static fromData(data: RegistryData): RegistryState {
    if (data?.version !== 1) {
      throw new RangeError(
        `gateway registry snapshot version ${data?.version} is not supported (expected 1)`,
      );
    }
    const state = new RegistryState();
    state.nextEpoch = data.nextEpoch;
    for (const g of data.gateways) {
      const { state: value, session, ...rest } = g;
      state.gateways.set(g.name, { ...rest, lifecycle: { value, context: { session } } });
    }
    for (const p of data.parties) {
      const { state: value, assignment: context, ...rest } = p;
      state.parties.set(p.id, {
        ...rest,
        assignment: { value, context },
      });
    }
    return state;
  }
}
