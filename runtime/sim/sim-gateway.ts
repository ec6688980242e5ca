// Simulated API gateway processes for the gateway workload (gateways.ts). Each runs the production gateway
// (gateway/gateway.ts: its lease, its cluster-connection drop, duties and epochs, the per-party order of
// closes and opens in links.ts, the real client library) with only its surroundings simulated: the client
// network and the virtual clock come through the process's ClientTransport, and its party connections go
// to one simulated remote system (RemoteSystem below), which checks that no party ever has two live ones.
//
// A process can be killed (its sockets close with it: the members and the remote system see them close;
// its session is left to the cluster), restarted, cut off from every member (no FIN, no RST), and frozen as
// by SIGSTOP: nothing in it runs, its timers and the frames sent to it wait, and it sends nothing — the
// remote system's heartbeat check then ends its party connections, as a real counterparty's would — until
// it is thawed, when what waited runs in order.

import { resolveGatewayConfig } from '../../gateway/config.ts';
import { Gateway } from '../../gateway/gateway.ts';
import type { PartyDialer, PartyLink } from '../../gateway/links.ts';
import type { ClientLink, ClientTimer, ClientTransport } from '../client/client-transport.ts';
import { endpointOf } from './client-network.ts';
import type { ClientHost } from './clients.ts';

/** A broken rule: `invariant` names it, `detail` says what. */
export type GatewayProblem = (invariant: string, detail: string) => void;

interface LiveConnection {
  readonly epoch: number;
  lastBeatAt: number;
  /** The remote end closes it: the gateway learns so (when its process runs). */
  readonly endedByRemote: () => void;
}

/**
 * The remote systems the gateways connect to, in one: every live connection per party, checked as it
 * opens. Like a real counterparty (and gateway/stand-in.ts) it ends a connection silent for livenessMs.
 */
export class RemoteSystem {
  /** party → gateway → its live connection. */
  private readonly live = new Map<string, Map<string, LiveConnection>>();
  connectionsOpened = 0;

  constructor(
    private readonly problem: GatewayProblem,
    private readonly now: () => number,
    /** A connection with no heartbeat for this long is ended by the remote end. */
    readonly livenessMs: number,
  ) {}

  /** The live connections of a party now (gateway → epoch), after ending the silent ones. */
  holders(party: string): Map<string, number> {
    const holders = this.live.get(party);
    if (!holders) return new Map();
    for (const [gateway, connection] of [...holders]) {
      if (this.now() - connection.lastBeatAt <= this.livenessMs) continue;
      holders.delete(gateway);
      connection.endedByRemote();
    }
    return new Map([...holders].map(([gateway, connection]) => [gateway, connection.epoch]));
  }

  open(party: string, gateway: string, epoch: number, endedByRemote: () => void): void {
    for (const [other, otherEpoch] of this.holders(party)) {
      if (other !== gateway) {
        this.problem(
          'TWO_LIVE_CONNECTIONS',
          `party ${party}: ${gateway} opened epoch ${epoch} at ${Math.round(this.now())} ms while ${other} holds epoch ${otherEpoch}`,
        );
      }
    }
    const holders = this.live.get(party) ?? new Map<string, LiveConnection>();
    this.live.set(party, holders);
    holders.set(gateway, { epoch, lastBeatAt: this.now(), endedByRemote });
    this.connectionsOpened++;
  }

  beat(party: string, gateway: string, epoch: number): void {
    this.holders(party); // one silent too long was ended already, whatever arrives now
    const connection = this.live.get(party)?.get(gateway);
    if (connection?.epoch === epoch) connection.lastBeatAt = this.now();
  }

  close(party: string, gateway: string, epoch: number): void {
    const holders = this.live.get(party);
    if (holders?.get(gateway)?.epoch === epoch) holders.delete(gateway);
  }
}

export interface GatewaySpec {
  readonly name: string;
  readonly capabilities: readonly string[];
  readonly capacity: number;
  /** The simulated client network's number for this gateway (partitions cut it off by it). */
  readonly client: number;
}

export interface SimGatewaySettings {
  /** The cluster's session timeout (the gateway's lease and sync interval follow from it, as in production). */
  readonly sessionTimeoutMs: number;
  /** The gateway's closeOnDisconnectMs (absent: the default; null: off). */
  readonly closeOnDisconnectMs?: number | null;
  /** How often an OPEN fails (the remote end refuses), in [0, 1]. */
  readonly failRate: number;
}

/** What one process of a gateway owns: its timers and links, all dropped when it is killed. */
class Process {
  dead = false;
  cut = false;
  private frozen: (() => void)[] | null = null;
  readonly timers = new Set<ClientTimer>();
  readonly links = new Set<ClientLink>();
  /** Its party connections: closed at the remote end when it dies. */
  readonly partyLinks = new Set<() => void>();

  /** Run `what` in this process: now, later if it is frozen, never if it died. */
  run(what: () => void): void {
    if (this.dead) return;
    if (this.frozen) this.frozen.push(what);
    else what();
  }

  get isFrozen(): boolean {
    return this.frozen !== null;
  }

  freeze(): void {
    this.frozen ??= [];
  }

  thaw(): void {
    const waiting = this.frozen ?? [];
    this.frozen = null;
    for (const what of waiting) this.run(what);
  }

  /** The client network's transport, as seen from inside this process. */
  transport(base: ClientTransport): ClientTransport {
    const timer = (start: (run: () => void) => ClientTimer, run: () => void): ClientTimer => {
      // A timer that fell due while frozen runs once on thaw, however many times it fell due.
      let waiting = false;
      const handle = start(() => {
        if (waiting) return;
        waiting = true;
        this.run(() => {
          waiting = false;
          run();
        });
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
            this.run(() =>
              events.opened({
                send: (kind, body) => (this.cut ? true : link.send(kind, body)),
                close: (reason) => link.close(reason),
              }),
            );
          },
          failed: () => this.run(() => events.failed()),
          frame: (kind, body) => {
            if (!this.cut) this.run(() => events.frame(kind, body));
          },
          closed: () => {
            if (opened) this.links.delete(opened);
            this.run(() => events.closed());
          },
        });
      },
    };
  }

  kill(): void {
    this.dead = true;
    this.frozen = null;
    for (const timer of this.timers) timer.cancel();
    for (const link of this.links) link.close('process killed');
    this.links.clear();
    for (const close of this.partyLinks) close();
    this.partyLinks.clear();
  }
}

/** Party connections to the remote system, from inside one process (links.ts's PartyDialer). */
const simDialer = (
  process: Process,
  transport: ClientTransport,
  host: ClientHost,
  remote: RemoteSystem,
  gateway: string,
  heartbeatMs: number,
  failRate: number,
): PartyDialer => {
  // One way to the remote end: mostly quick, sometimes slow (a congested path, a busy counterparty).
  const delivery = () => (host.rng.chance(0.1) ? host.rng.int(20, 300) : host.rng.int(1, 5));
  return {
    open({ party, epoch }, { proceed, done, remoteClosed }) {
      // A connect and the remote's OK: a round trip or two.
      transport.after(delivery() + delivery(), () => {
        if (!proceed()) {
          done('given up before it was announced');
          return;
        }
        if (host.rng.chance(failRate)) {
          done('the remote end refused (simulated)');
          return;
        }
        let closed = false;
        /** The connection ends, once: this side's close reaches the remote end, or the remote end ends it. */
        const end = (byRemote: boolean) => {
          if (closed) return;
          closed = true;
          heartbeat.cancel();
          process.partyLinks.delete(closeAtRemote);
          if (byRemote) process.run(remoteClosed);
          else remote.close(party, gateway, epoch);
        };
        const closeAtRemote = () => end(false);
        remote.open(party, gateway, epoch, () => end(true));
        process.partyLinks.add(closeAtRemote);
        const heartbeat = transport.every(heartbeatMs, () => remote.beat(party, gateway, epoch));
        const link: PartyLink = {
          // FIN (the heartbeats stop), the remote end closes it, and its FIN comes back.
          close: (closedBoth) => {
            heartbeat.cancel();
            host.schedule(delivery(), () => {
              closeAtRemote();
              transport.after(delivery(), closedBoth);
            });
          },
        };
        done(link);
      });
    },
  };
};

export class SimGateway {
  private process: Process | null = null;
  private gateway: Gateway | null = null;
  /** The gateway's last log lines (for a violation's replay). */
  readonly logLines: string[] = [];

  constructor(
    readonly spec: GatewaySpec,
    private readonly host: ClientHost,
    private readonly remote: RemoteSystem,
    private readonly settings: SimGatewaySettings,
    /** Each answered registry command: when it was sent and answered. */
    private readonly answered: (call: number, ret: number) => void,
  ) {}

  /** Parties it holds a live connection to, with their epochs. */
  get held(): Map<string, number> {
    return this.gateway?.open ?? new Map();
  }

  get alive(): boolean {
    return this.process !== null;
  }

  get isCut(): boolean {
    return this.process?.cut === true;
  }

  get isFrozen(): boolean {
    return this.process?.isFrozen === true;
  }

  start(): void {
    this.note('started');
    const process = new Process();
    this.process = process;
    const transport = process.transport(this.host.transportFor(this.spec.client));
    const { name, capabilities, capacity } = this.spec;
    const config = resolveGatewayConfig({
      name,
      capabilities: [...capabilities],
      capacity,
      endpoints: this.host.memberIds.map(endpointOf),
      sessionTimeoutMs: this.settings.sessionTimeoutMs,
      ...(this.settings.closeOnDisconnectMs === undefined
        ? {}
        : { closeOnDisconnectMs: this.settings.closeOnDisconnectMs }),
    });
    const line = (level: string) => (fields: object, message: string) => {
      this.logLines.push(`${Math.round(this.host.now())} ${level} ${message} ${JSON.stringify(fields)}`);
      if (this.logLines.length > 300) this.logLines.shift();
    };
    this.gateway = Gateway.start(config, {
      transport,
      dialer: simDialer(
        process,
        transport,
        this.host,
        this.remote,
        name,
        config.heartbeatMs,
        this.settings.failRate,
      ),
      log: { info: line('info'), warn: line('warn') },
      seed: () => this.host.rng.uint32(),
      answered: (sentAt) => this.answered(sentAt, this.host.now()),
    });
  }

  private note(fault: string): void {
    this.logLines.push(`${Math.round(this.host.now())} FAULT ${fault}`);
  }

  /** The process dies: its connections close with it; its session is left to the cluster. */
  kill(): void {
    if (this.process) this.note('killed');
    this.process?.kill();
    this.process = null;
    this.gateway = null;
  }

  /** Cut the process off from every member (or heal the cut). */
  setCut(cut: boolean): void {
    if (!this.process || this.process.cut === cut) return;
    this.note(cut ? 'cut off from every member' : 'cut healed');
    this.process.cut = cut;
  }

  /** Stop the process as SIGSTOP does (or let it go on, as SIGCONT). */
  setFrozen(frozen: boolean): void {
    if (!this.process || this.process.isFrozen === frozen) return;
    this.note(frozen ? 'SIGSTOP' : 'SIGCONT');
    if (frozen) this.process.freeze();
    else this.process.thaw();
  }
}
