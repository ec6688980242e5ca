// One simulated API gateway process for the gateway workload (gateways.ts): a real client library
// (ChorusClient) on the simulated client network, following the `gateways` service's protocol the way
// gateway/ does — REGISTER on a new session, SYNC on a resumed one and every syncEveryMs, OPEN / CLOSE
// orders pushed to its session, OPENED / FAILED / CLOSED reported back — and holding "connections" at the
// remote system's stand-in (RemoteSystem below), which checks that no party ever has two live ones.
//
// Two rules keep a gateway from holding a party the registry has given to another:
// - a lease: every answered REGISTER or SYNC proves its session was alive when that command was sent;
//   past leaseMs (well under the session timeout) from the last such send, it closes everything before
//   acting on anything else, so a gateway cut off from the cluster has let go before its session can
//   time out and its parties move;
// - epochs: an OPEN for an epoch it has given up (closed on the registry's order, or reported FAILED, after
//   which the registry moves on at once) is stale and ignored, even when a duty list names it.
//
// The process can be killed (its connections close with it, its session is left to time out) and
// restarted, or cut off from every member for a while.

import { unpack } from 'msgpackr';
import type { DutyList, GatewayOrder } from '../../actors/services/gateway-registry/commands.ts';
import { gatewaysService } from '../../actors/services/gateway-registry/service.ts';
import { ChorusClient, type CommandOutcome } from '../client/client.ts';
import type { ClientLink, ClientTimer, ClientTransport } from '../client/client-transport.ts';
import { endpointOf } from './client-network.ts';
import type { ClientHost } from './clients.ts';

/** A broken rule: `invariant` names it, `detail` says what. */
export type GatewayProblem = (invariant: string, detail: string) => void;

/** The remote systems the gateways connect to, in one: every live connection per party, checked as it opens. */
export class RemoteSystem {
  /** party → gateway → epoch of its live connection. */
  readonly live = new Map<string, Map<string, number>>();
  connectionsOpened = 0;

  constructor(
    private readonly problem: GatewayProblem,
    private readonly now: () => number,
  ) {}

  open(party: string, gateway: string, epoch: number): void {
    const holders = this.live.get(party) ?? new Map<string, number>();
    this.live.set(party, holders);
    for (const [other, otherEpoch] of holders) {
      if (other !== gateway) {
        this.problem(
          'TWO_LIVE_CONNECTIONS',
          `party ${party}: ${gateway} opened epoch ${epoch} at ${Math.round(this.now())} ms while ${other} holds epoch ${otherEpoch}`,
        );
      }
    }
    holders.set(gateway, epoch);
    this.connectionsOpened++;
  }

  close(party: string, gateway: string): void {
    this.live.get(party)?.delete(gateway);
  }
}

export interface GatewaySpec {
  readonly name: string;
  readonly capabilities: readonly string[];
  readonly capacity: number;
  /** The simulated client network's number for this gateway (partitions cut it off by it). */
  readonly client: number;
}

export interface GatewayTiming {
  readonly leaseMs: number;
  readonly syncEveryMs: number;
  readonly commandTimeoutMs: number;
  /** How often an OPEN fails (the remote end refuses), in [0, 1]. */
  readonly failRate: number;
}

/** What one process of a gateway owns: its timers and links, all dropped when it is killed. */
class Process {
  dead = false;
  cut = false;
  readonly timers = new Set<ClientTimer>();
  readonly links = new Set<ClientLink>();

  /** The client network's transport, as seen from inside this process. */
  transport(base: ClientTransport): ClientTransport {
    const timer = (start: (run: () => void) => ClientTimer, run: () => void): ClientTimer => {
      const handle = start(() => {
        if (!this.dead) run();
      });
      this.timers.add(handle);
      return handle;
    };
    return {
      now: () => base.now(),
      after: (ms, run) => timer((r) => base.after(ms, r), run),
      every: (ms, run) => timer((r) => base.every(ms, r), run),
      dial: (endpoint, options, events) => {
        if (this.cut) {
          timer(
            (r) => base.after(options.timeoutMs, r),
            () => events.failed(),
          );
          return;
        }
        let opened: ClientLink | null = null;
        base.dial(endpoint, options, {
          opened: (link) => {
            if (this.dead) return link.close('process killed');
            opened = link;
            this.links.add(link);
            events.opened({
              send: (kind, body) => (this.cut ? true : link.send(kind, body)),
              close: (reason) => link.close(reason),
            });
          },
          failed: () => {
            if (!this.dead) events.failed();
          },
          frame: (kind, body) => {
            if (!this.dead && !this.cut) events.frame(kind, body);
          },
          closed: () => {
            if (opened) this.links.delete(opened);
            if (!this.dead) events.closed();
          },
        });
      },
    };
  }

  kill(): void {
    this.dead = true;
    for (const timer of this.timers) timer.cancel();
    for (const link of this.links) link.close('process killed');
    this.links.clear();
  }
}

export class SimGateway {
  /** Parties it holds a live connection to, with their epochs. */
  readonly held = new Map<string, number>();
  /**
   * The highest epoch per party it gave up — closed on the registry's order, or reported FAILED (the
   * registry moves on at once): an OPEN at or below it is stale, even from a duty list.
   */
  private readonly givenUp = new Map<string, number>();
  /** OPENED reports the registry accepted, per party (re-sent from a duty list until accepted). */
  private readonly acknowledged = new Map<string, number>();
  private process: Process | null = null;
  private client: ChorusClient | null = null;
  /** When the last REGISTER or SYNC that was answered had been sent (its session was alive then). */
  private confirmedAt = Number.NEGATIVE_INFINITY;
  private lastSyncAt = Number.NEGATIVE_INFINITY;
  private registered = false;
  /** Sending SYNCs (off in the quiet phase; the lease then runs out and it lets go). */
  active = true;

  constructor(
    readonly spec: GatewaySpec,
    private readonly host: ClientHost,
    private readonly remote: RemoteSystem,
    private readonly timing: GatewayTiming,
    /** Each answered command: when it was sent and answered. */
    private readonly answered: (call: number, ret: number) => void,
  ) {}

  get alive(): boolean {
    return this.process !== null;
  }

  get isCut(): boolean {
    return this.process?.cut === true;
  }

  start(): void {
    const process = new Process();
    this.process = process;
    this.registered = false;
    // A new process remembers nothing of the last one (its orders went to the last one's session).
    this.givenUp.clear();
    this.acknowledged.clear();
    this.connect(process);
    process.transport(this.host.transportFor(this.spec.client)).every(100, () => this.tick());
  }

  /** A new client (and session) in this process: at start, and when the cluster closed the last one. */
  private connect(process: Process): void {
    this.registered = false;
    this.confirmedAt = Number.NEGATIVE_INFINITY;
    const client = ChorusClient.start({
      endpoints: this.host.memberIds.map(endpointOf),
      seed: this.host.rng.uint32(),
      transport: process.transport(this.host.transportFor(this.spec.client)),
      commandTimeoutMs: this.timing.commandTimeoutMs,
      maxInFlight: 8,
    });
    this.client = client;
    client.onSession(({ resumed }) => {
      if (!resumed) this.registered = false; // a new session: the name must be registered from it
      if (this.registered) this.sync();
      else this.register();
    });
    client.onMessage((message) => this.order(message as GatewayOrder));
  }

  /** The process dies: its connections close with it; its session is left to time out. */
  kill(): void {
    this.process?.kill();
    this.process = null;
    this.client = null;
    this.letGoOfAll();
  }

  /** Cut the process off from every member (or heal the cut). */
  setCut(cut: boolean): void {
    if (this.process) this.process.cut = cut;
  }

  private tick(): void {
    this.checkLease();
    if (this.client?.state === 'CLOSED' && this.process) {
      // The cluster closed its session (it timed out while cut off): let go, and start over.
      this.letGoOfAll();
      this.connect(this.process);
    }
    const now = this.host.now();
    if (this.active && this.registered && now - this.lastSyncAt >= this.timing.syncEveryMs) this.sync();
    else if (this.active && !this.registered && now - this.lastSyncAt >= this.timing.syncEveryMs)
      this.register();
  }

  /** Past the lease, nothing it holds is covered by a live session any more: let go of everything. */
  private checkLease(): boolean {
    if (this.host.now() - this.confirmedAt < this.timing.leaseMs) return true;
    this.letGoOfAll();
    return false;
  }

  private letGoOfAll(): void {
    for (const party of this.held.keys()) this.remote.close(party, this.spec.name);
    this.held.clear();
    this.acknowledged.clear();
  }

  private register(): void {
    const { name, capabilities, capacity } = this.spec;
    this.askDuties({ type: 'REGISTER', name, capabilities, labels: {}, capacity });
  }

  private sync(): void {
    this.askDuties({ type: 'SYNC', name: this.spec.name });
  }

  private askDuties(command: Record<string, unknown> & { type: 'REGISTER' | 'SYNC' }): void {
    const client = this.client;
    if (!client) return;
    const sentAt = this.host.now();
    this.lastSyncAt = sentAt;
    this.send(client, command, (value) => {
      if (client !== this.client || value === undefined) return;
      if (isRefused(value)) {
        // Not (or no longer) registered from this session: REGISTER again on the next tick.
        if (command.type === 'SYNC') this.registered = false;
        return;
      }
      if (this.host.now() - sentAt >= this.timing.leaseMs) return; // too old to vouch for anything
      this.confirmedAt = Math.max(this.confirmedAt, sentAt);
      this.registered = true;
      this.follow(value as DutyList);
    });
  }

  /** A duty list is the registry's whole view of this gateway when it answered. */
  private follow(list: DutyList): void {
    if (!this.checkLease()) return;
    const listed = new Set<string>();
    for (const duty of list.epochs) {
      listed.add(duty.party);
      if (duty.action === 'OPEN') this.open(duty.party, duty.epoch, true);
      else this.close(duty.party, duty.epoch);
    }
    // Held but not listed: the registry no longer counts on it here (closing is always safe).
    for (const party of [...this.held.keys()]) {
      if (listed.has(party)) continue;
      this.remote.close(party, this.spec.name);
      this.held.delete(party);
    }
  }

  private order(order: GatewayOrder): void {
    if (!this.checkLease()) return; // fenced: the next SYNC says what to hold
    if (order.type === 'OPEN') this.open(order.party, order.epoch, false);
    else if (order.type === 'CLOSE') this.close(order.party, order.epoch);
  }

  private open(party: string, epoch: number, fromList: boolean): void {
    if (epoch <= (this.givenUp.get(party) ?? 0)) return; // given up already
    const held = this.held.get(party);
    if (held !== undefined && held > epoch) return; // an older order
    if (held === epoch) {
      if (fromList && this.acknowledged.get(party) !== epoch) this.report(party, epoch, 'OPENED');
      return;
    }
    if (held !== undefined) this.remote.close(party, this.spec.name);
    if (this.host.rng.chance(this.timing.failRate)) {
      this.held.delete(party);
      this.giveUp(party, epoch);
      this.report(party, epoch, 'FAILED');
      return;
    }
    this.held.set(party, epoch);
    this.remote.open(party, this.spec.name, epoch);
    this.report(party, epoch, 'OPENED');
  }

  private giveUp(party: string, epoch: number): void {
    this.givenUp.set(party, Math.max(epoch, this.givenUp.get(party) ?? 0));
  }

  private close(party: string, epoch: number): void {
    this.giveUp(party, epoch);
    const held = this.held.get(party);
    if (held !== undefined && held <= epoch) {
      this.remote.close(party, this.spec.name);
      this.held.delete(party);
    }
    this.report(party, epoch, 'CLOSED');
  }

  private report(party: string, epoch: number, status: 'OPENED' | 'FAILED' | 'CLOSED'): void {
    const client = this.client;
    if (!client) return;
    const command = { type: 'REPORT', name: this.spec.name, party, epoch, status };
    this.send(client, command, (value) => {
      if (status === 'OPENED' && value !== undefined && !isRefused(value))
        this.acknowledged.set(party, epoch);
    });
  }

  private send(client: ChorusClient, command: Record<string, unknown>, done: (value: unknown) => void): void {
    const call = this.host.now();
    client.submit(gatewaysService.commandBody(command), (outcome: CommandOutcome) => {
      if ('error' in outcome) return done(undefined);
      const reply = unpack(outcome.reply) as { ok: boolean; value?: unknown };
      if (!reply.ok) return done(undefined);
      this.answered(call, this.host.now());
      done(reply.value);
    });
  }
}

const isRefused = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && 'refused' in value;
