// What the `gateways` service accepts from clients (zod schemas, one per command), what it answers, and
// what it pushes to a gateway's session. Gateways send REGISTER, REPORT and SYNC; operators (the
// `chorus gateway` commands) send DRAIN, SET_PARTIES, APPLY_RULES, PLAN, EXPLAIN and STATUS. A client
// sends `[GATEWAYS_SERVICE, command]` (gatewaysService.commandBody(command) builds it).
//
// A refusal is answered `{ refused: '<reason>' }` (the command was applied to nothing), as the KV
// service answers one.

import { z } from 'zod';
import type { GatewayState } from '../../../machines/gateway-lifecycle.ts';
import type { PartyState } from '../../../machines/party-assignment.ts';
import type { GatewayView } from './rules/index.ts';

export const GATEWAYS_SERVICE = 'gateways';

const NAME = z.string().min(1).max(200);
const LABELS = z.record(z.string().min(1).max(253), z.string().max(253));
const CAPABILITIES = z.array(z.string().min(1).max(200)).max(64);
/** Most parties one SET_PARTIES may list. */
export const MAX_PARTIES = 100_000;

export const PartySchema = z.strictObject({
  id: NAME,
  /** Where the party's remote system listens (`host:port`); the gateway connects there. */
  endpoint: z.string().min(1).max(500),
  labels: LABELS.default({}),
  /** Capabilities a gateway needs to serve this party. */
  requires: CAPABILITIES.default([]),
});
export type PartyDefinition = z.output<typeof PartySchema>;

export const gatewayCommands = {
  REGISTER: z.strictObject({
    type: z.literal('REGISTER'),
    name: NAME,
    capabilities: CAPABILITIES.default([]),
    labels: LABELS.default({}),
    /** Parties it may hold at once. */
    capacity: z.int().min(0).max(1_000_000),
  }),
  REPORT: z.strictObject({
    type: z.literal('REPORT'),
    name: NAME,
    party: NAME,
    epoch: z.int().min(1),
    status: z.enum(['OPENED', 'FAILED', 'CLOSED']),
  }),
  DRAIN: z.strictObject({ type: z.literal('DRAIN'), name: NAME }),
  SET_PARTIES: z.strictObject({
    type: z.literal('SET_PARTIES'),
    parties: z.array(PartySchema).max(MAX_PARTIES),
  }),
  APPLY_RULES: z.strictObject({
    type: z.literal('APPLY_RULES'),
    /** The rules document: YAML or JSON text, or the parsed object. */
    rules: z.union([z.string(), z.record(z.string(), z.unknown())]),
    /** Refuse unless the rules in force are this version (what the plan was made against). */
    ifVersion: z.int().min(0).optional(),
  }),
  PLAN: z.strictObject({
    type: z.literal('PLAN'),
    rules: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
  }),
  EXPLAIN: z.strictObject({
    type: z.literal('EXPLAIN'),
    party: NAME,
    rules: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
  }),
  STATUS: z.strictObject({ type: z.literal('STATUS') }),
  SYNC: z.strictObject({ type: z.literal('SYNC'), name: NAME }),
};

type Commands = typeof gatewayCommands;
export type GatewayCommand = { [K in keyof Commands]: z.output<Commands[K]> }[keyof Commands];

/** One entry of a gateway's duty list: hold (OPEN) or let go of (CLOSE) a party under an epoch. */
export interface Duty {
  readonly party: string;
  readonly epoch: number;
  readonly endpoint: string;
  readonly action: 'OPEN' | 'CLOSE';
}

/** What REGISTER and SYNC answer: the gateway's state and its whole duty list (for a resync). */
export interface DutyList {
  readonly gateway: { readonly name: string; readonly state: GatewayState; readonly session: number };
  readonly epochs: Duty[];
}

/** Pushed to a gateway's session (ChorusClient.onMessage). */
export type GatewayOrder =
  | { readonly type: 'OPEN'; readonly party: string; readonly epoch: number; readonly endpoint: string }
  | { readonly type: 'CLOSE'; readonly party: string; readonly epoch: number };

/** A gateway as STATUS shows it: the planner's view of it, its session and how many parties it holds. */
export interface GatewayStatus extends GatewayView {
  readonly session: number;
  /** Parties it holds or is offered (owner), not counting moves towards it. */
  readonly parties: number;
}

export interface PartyStatus {
  readonly id: string;
  readonly endpoint: string;
  readonly owner: string | null;
  readonly state: PartyState;
  readonly epoch: number;
  /** Where a MOVING party goes next. */
  readonly target: string | null;
}

/** What STATUS answers. */
export interface RegistryStatus {
  readonly rulesVersion: number;
  readonly gateways: GatewayStatus[];
  readonly parties: PartyStatus[];
}

export interface Refusal {
  readonly refused: string;
}

export const isRefusal = (value: unknown): value is Refusal =>
  typeof value === 'object' && value !== null && typeof (value as Refusal).refused === 'string';
