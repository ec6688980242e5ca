// The gateway process (`chorus gateway --config FILE`): a cluster client that registers with the gateway
// registry, keeps its session alive, opens and closes the outbound connection of each party the registry
// gives it, and reports OPENED / FAILED / CLOSED.
//
// Ownership, and why a gateway closes what it cannot confirm. The registry moves a party away only once
// its owner confirmed the close or its session closed (LOST); a session closes at the earliest
// sessionTimeoutMs after the cluster last heard from the gateway. So a connection is safe while the
// gateway's last answered command was sent less than sessionTimeoutMs ago. The gateway re-reads its duties
// with SYNC every syncIntervalMs; each answer renews a lease of leaseMs (< sessionTimeoutMs) counted from
// when that SYNC was sent. Before it acts on anything — a pushed order, a session change, a timer — it
// checks the lease: once it has run out (the gateway was frozen by SIGSTOP, or cut off from the cluster),
// it closes every connection at once, before anything else, and holds nothing until a duty list from the
// cluster says what it still owns. The gateway also asks the leader (closeOnDisconnectMs) to close its
// session soon after its connection is gone, so a SIGKILLed gateway's parties move in about that long; in
// exchange, the moment its own cluster connection is lost it drops every party connection, until its
// session is back (ownership.ts). A frozen process cannot close its sockets while frozen: the remote end's
// heartbeat check (gateway/stand-in.ts) ends them, which is why its liveness window must be shorter than
// the session timeout. Every order is idempotent by epoch (duties.ts), and an epoch once reported CLOSED or
// FAILED is never opened again; after a leader change or a reconnect the session is resumed and the gateway
// re-syncs; a new session (the old one closed) registers again.
//
// Everything here runs on callbacks, against a GatewayHost: the client transport's clock and timers, and a
// dialer for the party connections. The gateway process (process.ts) gives it real sockets and timers; the
// simulator (runtime/sim/sim-gateway.ts) its network, virtual clock and remote system — the same code.

import type { ServiceReply } from '../runtime/actor-runtime/service-client.ts';
import { decodeServiceReply } from '../runtime/actor-runtime/service-client.ts';
import { ChorusClient, type SessionChange } from '../runtime/client/client.ts';
import type { ClientTimer, ClientTransport } from '../runtime/client/client-transport.ts';
import { type GatewayConfig, GUARD_EVERY_MS } from './config.ts';
import { Duties } from './duties.ts';
import { Links, type PartyDialer, type ReportStatus } from './links.ts';
import { parseDuties, parseOrder, registryCommand } from './messages.ts';
import { Ownership } from './ownership.ts';

const MAX_IN_FLIGHT = 256;
const COMMAND_TIMEOUT_MS = 30_000;
/** After the cluster closed its session, a gateway opens a new one this much later. */
const NEW_SESSION_AFTER_MS = 100;

/** What a gateway logs with (pino's shape). */
export interface GatewayLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** Where a gateway runs: its clock, timers and way to the cluster, and how it reaches the parties. */
export interface GatewayHost {
  /** The cluster client's transport; its clock and timers are the gateway's too. */
  readonly transport: ClientTransport;
  readonly dialer: PartyDialer;
  readonly log: GatewayLog;
  /** Seeds the client's back-off (the simulator's seed; random when absent). */
  readonly seed?: () => number;
  /** Each registry command the cluster answered, with when it was sent (the simulator's progress check). */
  readonly answered?: (sentAt: number) => void;
}

export class Gateway {
  private client: ChorusClient | null = null;
  private readonly duties = new Duties();
  private readonly links: Links;
  /** The lease and the cluster connection (the transport's clock): when this gateway may no longer own anything. */
  private readonly ownership: Ownership;
  private readonly timers: ClientTimer[] = [];
  private stopped = false;
  /** The epoch last reported CLOSED per party: a close is reported once, whoever noticed it first. */
  private readonly reportedClosed = new Map<string, number>();
  /**
   * When the SYNC (or REGISTER) in flight was sent, or null. Another goes out once it is a sync interval old
   * unanswered: one lost in a reconnect must not hold the lease unrenewed until the command timeout.
   */
  private syncSentAt: number | null = null;
  /**
   * The registry answered this session's REGISTER with a duty list. Until then (a new session, or a SYNC
   * refused as not registered from it), each sync tick sends REGISTER instead of SYNC: a REGISTER refused
   * while the name's old session is still open succeeds once that session closed or timed out.
   */
  private registered = false;
  private readonly log: GatewayLog;

  private constructor(
    readonly config: GatewayConfig,
    private readonly host: GatewayHost,
  ) {
    this.log = host.log;
    this.ownership = new Ownership(config);
    this.links = new Links({
      dialer: host.dialer,
      report: (party, epoch, status, detail) => this.report(party, epoch, status, detail),
      isEnded: (party, epoch) => this.duties.isEnded(party, epoch),
      beforeEvent: () => this.guard(),
    });
  }

  static start(config: GatewayConfig, host: GatewayHost): Gateway {
    const gateway = new Gateway(config, host);
    gateway.connect();
    gateway.timers.push(host.transport.every(GUARD_EVERY_MS, () => gateway.guard()));
    gateway.timers.push(host.transport.every(config.syncIntervalMs, () => gateway.sync()));
    return gateway;
  }

  /** The parties held open now, with their epochs. */
  get open(): Map<string, number> {
    return this.links.open;
  }

  private now(): number {
    return this.host.transport.now();
  }

  /** Stop: hand the parties over (drain), close every connection in order, then the session. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.drain(resolve));
    for (const timer of this.timers) timer.cancel();
    this.duties.dropAll();
    // Each reported CLOSED on the way.
    await new Promise<void>((resolve) => this.links.converge(this.duties.want, resolve));
    this.stopped = true;
    await this.client?.close().catch(() => {});
  }

  /**
   * Ask the registry to move every party away (DRAIN) and follow its CLOSE orders until nothing is held,
   * for at most a session timeout (a party no other gateway can take stays until then): a planned stop
   * hands its parties over at once instead of after the session times out.
   */
  private drain(done: () => void): void {
    if (this.client?.state !== 'CONNECTED') {
      done();
      return;
    }
    this.ask(
      { type: 'DRAIN', name: this.config.name },
      (reply) => {
        const refused = reply.ok ? (reply.value as { refused?: unknown } | null)?.refused : reply.error;
        if (refused !== undefined) {
          this.log.warn({ gateway: this.config.name, refused }, 'drain refused');
          done();
          return;
        }
        this.log.info({ gateway: this.config.name }, 'draining');
        const deadline = this.now() + this.config.sessionTimeoutMs;
        const waiting = this.host.transport.every(GUARD_EVERY_MS, () => {
          if (this.now() < deadline && (this.open.size > 0 || this.duties.want.size > 0)) return;
          waiting.cancel();
          done();
        });
      },
      (error) => {
        this.log.warn({ gateway: this.config.name, error }, 'drain not answered');
        done();
      },
    );
  }

  private connect(): void {
    const client = ChorusClient.start({
      endpoints: this.config.endpoints,
      ...(this.config.credentials === undefined ? {} : { credentials: this.config.credentials }),
      // Reports and syncs go out in bursts (a lost gateway's parties, a drop after the lease ran out):
      // let them pipeline, and wait for answers as long as a leader change or two may take.
      maxInFlight: MAX_IN_FLIGHT,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      // The leader closes the session this long after the connection is gone (parties move within about a
      // second of a SIGKILL); the gateway drops every party connection the moment it sees the loss.
      closeOnDisconnectMs: this.config.closeOnDisconnectMs,
      transport: this.host.transport,
      ...(this.host.seed === undefined ? {} : { seed: this.host.seed() }),
      onStateChange: (state) => {
        // (The first state arrives while ChorusClient.start runs, before `client` is assigned: nothing held yet.)
        if (this.client === null) return;
        if (this.client === client) this.log.info({ gateway: this.config.name, state }, 'cluster connection');
        if (state !== 'CONNECTED' && this.client === client) {
          // Dropped in this very turn (closeOnDisconnectMs): no stall can come between the loss and the drop.
          this.ownership.connectionLost(this.now());
          this.guard();
        }
        if (state !== 'CLOSED' || this.client !== client || this.stopped) return;
        // The session is gone (closed by the cluster, e.g. timed out while frozen): nothing is owned any
        // more. Close everything first, then start a new session, which registers again.
        this.log.warn(
          { gateway: this.config.name },
          'session closed: closing every connection, registering again',
        );
        this.loseOwnership('session closed');
        this.client = null;
        this.timers.push(
          this.host.transport.after(NEW_SESSION_AFTER_MS, () => this.stopped || this.connect()),
        );
      },
    });
    this.client = client;
    client.onMessage((message) => this.onMessage(message));
    client.onSession((session) => this.onSession(session));
  }

  /**
   * A connection is kept only while ownership was confirmed less than leaseMs ago, and while the cluster
   * connection is up (with closeOnDisconnectMs: ownership.ts).
   */
  private guard(): void {
    const lapse = this.ownership.lapsed(this.now());
    if (lapse === null) return;
    if (this.links.open.size === 0 && this.duties.want.size === 0) return;
    const { leaseMs, dropOnDisconnect } = this.config;
    this.log.warn(
      { gateway: this.config.name, lapse, leaseMs, dropOnDisconnect },
      lapse === 'lease expired'
        ? 'ownership unconfirmed past the lease: closing every connection until the cluster confirms'
        : 'ownership unconfirmed, cluster connection lost: closing every connection until the session is back',
    );
    this.loseOwnership(lapse);
    this.sync();
  }

  private loseOwnership(why: string): void {
    this.duties.dropAll();
    this.links.dropAll();
    this.log.info({ gateway: this.config.name, why }, 'holding nothing');
  }

  private onSession(session: SessionChange): void {
    this.guard();
    this.ownership.sessionOpen();
    this.log.info(
      { gateway: this.config.name, ...session },
      session.resumed ? 'session resumed' : 'session open',
    );
    if (session.resumed) {
      this.sync();
      return;
    }
    // A new session: the one the registry knew this gateway by is closed, so it owns nothing now.
    if (this.links.open.size > 0 || this.duties.want.size > 0) this.loseOwnership('new session');
    this.registered = false;
    this.syncSentAt = null; // what was in flight went with the old session
    this.sync();
  }

  private onMessage(message: unknown): void {
    this.guard();
    const parsed = parseOrder(message);
    if (!parsed.ok) {
      this.log.warn(
        { gateway: this.config.name, problem: parsed.problem },
        'refused a message from the cluster',
      );
      return;
    }
    const { order } = parsed;
    if (order.type === 'OPEN' && this.ownership.lapsed(this.now()) !== null) {
      // Pushed before the lease lapsed or the connection dropped (read after a freeze, say): it vouches for
      // nothing now, and the registry may have moved the party since. The next SYNC says what is owned.
      this.log.info({ gateway: this.config.name, order }, 'order while ownership unconfirmed: ignored');
      return;
    }
    if (!this.duties.apply(order)) {
      this.log.info({ gateway: this.config.name, order }, 'stale order ignored');
      // A repeated CLOSE of an epoch no longer held is still answered: the registry waits for it.
      if (order.type === 'CLOSE') this.report(order.party, order.epoch, 'CLOSED');
      return;
    }
    this.follow();
  }

  /** Make the connections follow the duties; then report CLOSED for the closes the registry asked for. */
  private follow(): void {
    const closes = this.duties.takeClosed();
    this.links.converge(this.duties.want);
    for (const { party, epoch } of closes) {
      this.links.settled(party, () => this.report(party, epoch, 'CLOSED'));
    }
  }

  /** Re-read the duty list: SYNC, or REGISTER while this session is not registered yet (one at a time). */
  private sync(): void {
    if (this.stopped || !this.client || this.client.state !== 'CONNECTED') return;
    const now = this.now();
    if (this.syncSentAt !== null && now - this.syncSentAt < this.config.syncIntervalMs) return;
    this.syncSentAt = now;
    const { name, capabilities, labels, capacity } = this.config;
    const command = this.registered
      ? { type: 'SYNC' as const, name }
      : { type: 'REGISTER' as const, name, capabilities, labels, capacity };
    this.askDuties(command, () => {
      if (this.syncSentAt === now) this.syncSentAt = null;
    });
  }

  /** REGISTER or SYNC: the answer is the whole duty list; it renews the lease from when it was sent. */
  private askDuties(
    command: { type: 'REGISTER' | 'SYNC' } & Record<string, unknown>,
    done: () => void,
  ): void {
    this.ask(
      command,
      (reply) => {
        if (!reply.ok) {
          this.log.warn({ gateway: this.config.name, command: command.type, error: reply.error }, 'refused');
        } else this.takeDuties(command.type, reply.value);
        done();
      },
      (error) => {
        this.log.warn({ gateway: this.config.name, command: command.type, error }, 'no answer');
        done();
      },
    );
  }

  private takeDuties(command: 'REGISTER' | 'SYNC', value: unknown): void {
    const refused = (value as { refused?: unknown } | null)?.refused;
    if (refused !== undefined) {
      // Not registered from this session (SYNC), or not yet registrable (REGISTER): REGISTER next time.
      this.registered = false;
      this.log.warn({ gateway: this.config.name, command, refused }, 'refused');
      return;
    }
    if (command === 'REGISTER') this.registered = true;
    if (this.ownership.lapsed(this.now()) !== null) {
      // Answered too late to vouch for anything (sent before a freeze, say): the guard already dropped all;
      // acting on it would reopen connections the registry may have given away. The next SYNC says.
      this.log.warn({ gateway: this.config.name, command }, 'answer too late: ignored');
      return;
    }
    const duties = parseDuties(value);
    if (!duties.ok) {
      this.log.warn({ gateway: this.config.name, problem: duties.problem }, `refused the ${command} answer`);
      return;
    }
    const endedButListed = this.duties.sync(duties.duties);
    for (const duty of endedButListed) {
      this.log.info(
        { gateway: this.config.name, ...duty },
        'listed, but ended here already: saying so again',
      );
      this.report(duty.party, duty.epoch, 'CLOSED', undefined, true);
    }
    this.follow();
  }

  /**
   * Send a registry command. Any answer renews the lease from when the command was handed to the client
   * (the cluster received it later still, so the session lived at least until then); the lease is checked
   * first, so a gateway whose lease ran out while it waited closes everything before it takes the answer.
   */
  private ask(
    command: { type: string } & Record<string, unknown>,
    answered: (reply: ServiceReply) => void,
    failed: (error: string) => void,
  ): void {
    const client = this.client;
    if (!client) {
      failed('no session');
      return;
    }
    const sentAt = this.now();
    client.submit(registryCommand(command), (outcome) => {
      if ('error' in outcome) {
        failed(String(outcome.error));
        return;
      }
      let reply: ServiceReply;
      try {
        reply = decodeServiceReply(outcome.reply);
      } catch (error) {
        failed(String(error));
        return;
      }
      this.guard();
      if (this.client === client) {
        this.ownership.confirmed(sentAt);
        this.host.answered?.(sentAt);
      }
      answered(reply);
    });
  }

  /**
   * Report a connection's fate to the registry. CLOSED and FAILED end the epoch here for good (duties.ts);
   * a CLOSED goes once per epoch unless `again` (the registry still lists it).
   */
  private report(party: string, epoch: number, status: ReportStatus, detail?: string, again = false): void {
    if (status !== 'OPENED') this.duties.end(party, epoch);
    if (status === 'CLOSED') {
      if (this.reportedClosed.get(party) === epoch && !again) return;
      this.reportedClosed.set(party, epoch);
    }
    this.log.info(
      { gateway: this.config.name, party, epoch, status, ...(detail ? { detail } : {}) },
      'report',
    );
    if (!this.client || this.stopped) return;
    this.ask(
      { type: 'REPORT', name: this.config.name, party, epoch, status },
      (reply) => {
        if (!reply.ok) this.log.info({ party, epoch, status, error: reply.error }, 'report refused');
      },
      (error) => this.log.warn({ party, epoch, status, error }, 'report not answered'),
    );
  }
}
