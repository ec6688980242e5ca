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
// exchange, once its own cluster connection is lost it drops every party connection after disconnectDropMs
// (a share of it) unless its session is back by then (ownership.ts). A frozen process cannot close its sockets while frozen: the remote end's
// heartbeat check (gateway/stand-in.ts) ends them, which is why its liveness window must be shorter than
// the session timeout. Every order is idempotent by epoch (duties.ts); after a leader change or a
// reconnect the session is resumed and the gateway re-syncs; a new session (the old one closed) registers
// again.

import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { decodeServiceReply } from '../runtime/actor-runtime/service-client.ts';
import { ChorusClient, type SessionChange } from '../runtime/client/client.ts';
import { type GatewayConfig, GUARD_EVERY_MS } from './config.ts';
import { Connections, type ReportStatus } from './connections.ts';
import { Duties } from './duties.ts';
import { parseDuties, parseOrder, registryCommand } from './messages.ts';
import { Ownership } from './ownership.ts';

const MAX_IN_FLIGHT = 256;
const COMMAND_TIMEOUT_MS = 30_000;

export class Gateway {
  private client: ChorusClient | null = null;
  private readonly duties = new Duties();
  private readonly connections: Connections;
  /** The lease and the cluster connection (performance.now): when this gateway may no longer own anything. */
  private readonly ownership: Ownership;
  private readonly timers: NodeJS.Timeout[] = [];
  private stopped = false;
  /** The epoch last reported CLOSED per party: a close is reported once, whoever noticed it first. */
  private readonly reportedClosed = new Map<string, number>();
  private syncing = false;

  private constructor(
    readonly config: GatewayConfig,
    private readonly log: Logger,
  ) {
    this.ownership = new Ownership(config);
    this.connections = new Connections({
      gateway: config.name,
      heartbeatMs: config.heartbeatMs,
      timeoutMs: config.connectionTimeoutMs,
      report: (party, epoch, status, detail) => this.report(party, epoch, status, detail),
      beforeEvent: () => this.guard(),
    });
  }

  static start(config: GatewayConfig, log: Logger): Gateway {
    const gateway = new Gateway(config, log);
    gateway.connect();
    gateway.timers.push(setInterval(() => gateway.guard(), GUARD_EVERY_MS));
    gateway.timers.push(setInterval(() => void gateway.sync(), config.syncIntervalMs));
    return gateway;
  }

  /** The parties held open now, with their epochs. */
  get open(): Map<string, number> {
    return this.connections.open;
  }

  /** Stop: close every connection in order, then the session. */
  async stop(): Promise<void> {
    await this.drain();
    for (const timer of this.timers) clearInterval(timer);
    this.duties.dropAll();
    await this.connections.converge(this.duties.want); // each reported CLOSED on the way
    this.stopped = true;
    await this.client?.close().catch(() => {});
  }

  /**
   * Ask the registry to move every party away (DRAIN) and follow its CLOSE orders until nothing is held,
   * for at most a session timeout (a party no other gateway can take stays until then): a planned stop
   * hands its parties over at once instead of after the session times out.
   */
  private async drain(): Promise<void> {
    if (this.client?.state !== 'CONNECTED') return;
    try {
      const reply = await this.ask({ type: 'DRAIN', name: this.config.name });
      const refused = reply.ok ? (reply.value as { refused?: unknown } | null)?.refused : reply.error;
      if (refused !== undefined) {
        this.log.warn({ gateway: this.config.name, refused }, 'drain refused');
        return;
      }
    } catch (error) {
      this.log.warn({ gateway: this.config.name, error: String(error) }, 'drain not answered');
      return;
    }
    this.log.info({ gateway: this.config.name }, 'draining');
    const deadline = performance.now() + this.config.sessionTimeoutMs;
    while (performance.now() < deadline && (this.open.size > 0 || this.duties.want.size > 0)) {
      await new Promise((resolve) => setTimeout(resolve, GUARD_EVERY_MS));
    }
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
      // second of a SIGKILL); guard() drops every party connection well before that unless resumed.
      closeOnDisconnectMs: this.config.closeOnDisconnectMs,
      onStateChange: (state) => {
        // (The first state arrives while ChorusClient.start runs, before `client` is assigned: nothing held yet.)
        if (this.client === null) return;
        if (state !== 'CONNECTED' && this.client === client) this.ownership.connectionLost(performance.now());
        if (state !== 'CLOSED' || this.client !== client || this.stopped) return;
        // The session is gone (closed by the cluster, e.g. timed out while frozen): nothing is owned any
        // more. Close everything first, then start a new session, which registers again.
        this.log.warn(
          { gateway: this.config.name },
          'session closed: closing every connection, registering again',
        );
        this.loseOwnership('session closed');
        this.client = null;
        setTimeout(() => this.stopped || this.connect(), 100);
      },
    });
    this.client = client;
    client.onMessage((message) => this.onMessage(message));
    client.onSession((session) => this.onSession(session));
  }

  /**
   * A connection is kept only while ownership was confirmed less than leaseMs ago, and while the cluster
   * connection is up or was lost less than disconnectDropMs ago (ownership.ts).
   */
  private guard(): void {
    const lapse = this.ownership.lapsed(performance.now());
    if (lapse === null) return;
    if (this.connections.open.size === 0 && this.duties.want.size === 0) return;
    const { leaseMs, disconnectDropMs } = this.config;
    this.log.warn(
      { gateway: this.config.name, lapse, leaseMs, disconnectDropMs },
      lapse === 'lease expired'
        ? 'ownership unconfirmed past the lease: closing every connection until the cluster confirms'
        : 'ownership unconfirmed, cluster connection lost: closing every connection until the session is back',
    );
    this.loseOwnership(lapse);
    void this.sync();
  }

  private loseOwnership(why: string): void {
    this.duties.dropAll();
    this.connections.closeAllNow();
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
      void this.sync();
      return;
    }
    // A new session: the one the registry knew this gateway by is closed, so it owns nothing now.
    if (this.connections.open.size > 0 || this.duties.want.size > 0) this.loseOwnership('new session');
    void this.register();
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
    if (order.type === 'OPEN' && this.ownership.lapsed(performance.now()) !== null) {
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
    void this.follow();
  }

  /** Make the connections follow the duties; then report CLOSED for the closes the registry asked for. */
  private async follow(): Promise<void> {
    const closes = this.duties.takeClosed();
    await this.connections.converge(this.duties.want);
    for (const { party, epoch } of closes) {
      await this.connections.settled(party);
      this.report(party, epoch, 'CLOSED');
    }
  }

  private async register(): Promise<void> {
    const { name, capabilities, labels, capacity } = this.config;
    await this.askDuties({ type: 'REGISTER', name, capabilities, labels, capacity });
  }

  private async sync(): Promise<void> {
    if (this.syncing || this.stopped || !this.client || this.client.state !== 'CONNECTED') return;
    this.syncing = true;
    try {
      await this.askDuties({ type: 'SYNC', name: this.config.name });
    } finally {
      this.syncing = false;
    }
  }

  /** REGISTER or SYNC: the answer is the whole duty list; it renews the lease from when it was sent. */
  private async askDuties(command: { type: 'REGISTER' | 'SYNC' } & Record<string, unknown>): Promise<void> {
    let value: unknown;
    try {
      const reply = await this.ask(command);
      if (!reply.ok) {
        this.log.warn({ gateway: this.config.name, command: command.type, error: reply.error }, 'refused');
        return;
      }
      value = reply.value;
    } catch (error) {
      this.log.warn({ gateway: this.config.name, command: command.type, error: String(error) }, 'no answer');
      return;
    }
    const refused = (value as { refused?: unknown } | null)?.refused;
    if (refused !== undefined) {
      this.log.warn({ gateway: this.config.name, command: command.type, refused }, 'refused');
      return;
    }
    if (this.ownership.lapsed(performance.now()) !== null) {
      // Answered too late to vouch for anything (sent before a freeze, say): the guard already dropped all;
      // acting on it would reopen connections the registry may have given away. The next SYNC says.
      this.log.warn({ gateway: this.config.name, command: command.type }, 'answer too late: ignored');
      return;
    }
    const duties = parseDuties(value);
    if (!duties.ok) {
      this.log.warn(
        { gateway: this.config.name, problem: duties.problem },
        `refused the ${command.type} answer`,
      );
      return;
    }
    this.duties.sync(duties.duties);
    await this.follow();
  }

  /**
   * Send a registry command. Any answer renews the lease from when the command was handed to the client
   * (the cluster received it later still, so the session lived at least until then); the lease is checked
   * first, so a gateway whose lease ran out while it waited closes everything before it takes the answer.
   */
  private async ask(command: { type: string } & Record<string, unknown>) {
    const client = this.client;
    if (!client) throw new Error('no session');
    const sentAt = performance.now();
    const reply = decodeServiceReply(await client.send(registryCommand(command)));
    this.guard();
    if (this.client === client) this.ownership.confirmed(sentAt);
    return reply;
  }

  private report(party: string, epoch: number, status: ReportStatus, detail?: string): void {
    if (status === 'CLOSED') {
      if (this.reportedClosed.get(party) === epoch) return;
      this.reportedClosed.set(party, epoch);
    }
    this.log.info(
      { gateway: this.config.name, party, epoch, status, ...(detail ? { detail } : {}) },
      'report',
    );
    if (!this.client || this.stopped) return;
    this.ask({ type: 'REPORT', name: this.config.name, party, epoch, status }).then(
      (reply) => {
        if (!reply.ok) this.log.info({ party, epoch, status, error: reply.error }, 'report refused');
      },
      (error: unknown) =>
        this.log.warn({ party, epoch, status, error: String(error) }, 'report not answered'),
    );
  }
}
