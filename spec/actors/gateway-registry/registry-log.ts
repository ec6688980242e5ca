// A log for the gateway registry specs: commands from client sessions, session closes and cluster time,
// applied to real shards (ShardSet) running the `gateways` service, with a leader in miniature that fires
// the registry's cluster timers. Replies and notifications are kept per entry.

import type { ShardOutput } from '../../../actors/actor-runtime/protocol.ts';
import { ShardSet } from '../../../actors/actor-runtime/shard-set.ts';
import { EntryKind, type LogEntry } from '../../../actors/log/log-entry.ts';
import type { GatewayOrder } from '../../../actors/services/gateway-registry/commands.ts';
import type { RegistrySnapshot } from '../../../actors/services/gateway-registry/registry.ts';
import { gatewaysService } from '../../../actors/services/gateway-registry/service.ts';
import { encodeSessionClose } from '../../../actors/sessions/payloads.ts';
import { LeaderSim, LogBuilder } from '../actor-runtime/fixtures.ts';

export const SERVICES = { services: [gatewaysService] };
export const REGISTRY_ADDRESS = 'gateways/registry/fleet';

export interface Notification {
  readonly index: number;
  readonly sessionId: number;
  readonly message: GatewayOrder;
}

/** A leader that keeps every output it applies (LeaderSim consumes them). */
class RecordingLeader extends LeaderSim {
  readonly seen: ShardOutput[] = [];
  override applyEntries(entries: readonly LogEntry[]): ShardOutput[] {
    const outputs = super.applyEntries(entries);
    this.seen.push(...outputs);
    return outputs;
  }
}

export class RegistryLog {
  readonly log = new LogBuilder();
  readonly leader: RecordingLeader;
  private correlation = new Map<number, number>();

  constructor(shards = 2) {
    this.leader = new RecordingLeader(this.log, new ShardSet(shards, SERVICES));
  }

  /** Append a command from `session`, apply it and what follows; its reply (`value`, or the actor's error). */
  send(session: number, command: Record<string, unknown>): unknown {
    const correlation = (this.correlation.get(session) ?? 0) + 1;
    this.correlation.set(session, correlation);
    const entry = this.log.raw(
      EntryKind.SESSION_MESSAGE,
      gatewaysService.commandPayload(command, session, correlation, correlation),
    );
    this.leader.settle();
    const reply = this.leader.seen.find((o) => o.type === 'REPLY' && o.index === entry.index);
    if (reply?.type !== 'REPLY') throw new Error(`no reply to entry ${entry.index}`);
    return reply.ok ? reply.value : { error: reply.error };
  }

  /** The session closes (SESSION_CLOSE in the log). */
  closeSession(session: number): void {
    this.log.raw(EntryKind.SESSION_CLOSE, encodeSessionClose({ sessionId: session, reason: 'TIMEOUT' }));
    this.leader.settle();
  }

  /** Cluster time passes; the timers that fall due fire. */
  advance(ms: number): void {
    this.leader.advance(ms);
    this.leader.settle();
  }

  /** Every notification so far, in log order (from `fromIndex` on). */
  notifications(fromIndex = 0): Notification[] {
    return this.leader.seen.flatMap((o) =>
      o.type === 'NOTIFY' && o.index >= fromIndex
        ? [{ index: o.index, sessionId: o.sessionId, message: o.message as GatewayOrder }]
        : [],
    );
  }

  /** The registry's whole state, as its snapshot holds it. */
  get registry(): RegistrySnapshot {
    return this.leader.shards.actorState(REGISTRY_ADDRESS) as RegistrySnapshot;
  }

  party(id: string) {
    return this.registry.registry.parties.find((p) => p.id === id);
  }

  gateway(name: string) {
    return this.registry.registry.gateways.find((g) => g.name === name);
  }
}
