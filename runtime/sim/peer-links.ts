// The simulated network between members: directed links that can be cut, connections that break
// (what was in flight on one is lost with it), and per-message delay, loss, duplication, late delivery
// past an election timeout, and a late second TIMEOUT_NOW — all drawn from the seed's generator.

import type { ConsensusTimeouts, PeerMessage } from '../../actors/consensus/types.ts';
import type { Random } from '../../machines/random.ts';

export interface NetworkConditions {
  dropRate: number;
  dupRate: number;
  minDelayMs: number;
  maxDelayMs: number;
  /** Chance that a peer message is held back past an election timeout (it lands in a later term). */
  lateRate?: number;
  /** Chance that a TIMEOUT_NOW is delivered once more, late (after a later election began). */
  echoTimeoutNowRate?: number;
  /** Chance that a client's command is delivered once more, late (behind the client's newer commands). */
  lateResendRate?: number;
}

export const CALM_NETWORK: NetworkConditions = Object.freeze({
  dropRate: 0,
  dupRate: 0,
  minDelayMs: 0.5,
  maxDelayMs: 3,
});

/** A peer message on its way; `epoch` is its connection's generation (NaN: it outlives connections). */
export interface PeerDelivery {
  readonly from: number;
  readonly to: number;
  readonly message: PeerMessage;
  readonly epoch: number;
}

export interface PeerLinksHost {
  readonly rng: Random;
  readonly timeouts: ConsensusTimeouts;
  conditions(): NetworkConditions;
  /** Test-only: rewrite a message in flight (null drops it). */
  readonly tamper?: (from: number, to: number, message: PeerMessage) => PeerMessage | null;
  /** Sees every message put on the wire. */
  recorder(): ((from: number, to: number, message: PeerMessage) => void) | null;
  /** Holds back the messages it returns true for (a fault plan delivers them later, or never). */
  holder(): ((from: number, to: number, message: PeerMessage) => boolean) | null;
  deliver(delay: number, delivery: PeerDelivery): void;
}

export class PeerLinks {
  private readonly blocked = new Set<string>();
  /** A connection's generation per directed link: a message of an older one was lost with it. */
  private readonly linkEpoch = new Map<string, number>();

  constructor(private readonly host: PeerLinksHost) {}

  block(from: number, to: number): void {
    this.blocked.add(`${from}>${to}`);
  }

  unblock(from: number, to: number): void {
    this.blocked.delete(`${from}>${to}`);
  }

  unblockAll(): void {
    this.blocked.clear();
  }

  /** The connection from -> to breaks: what is in flight on it is lost. */
  breakConnection(from: number, to: number): void {
    const link = `${from}>${to}`;
    this.linkEpoch.set(link, (this.linkEpoch.get(link) ?? 0) + 1);
  }

  /** False for a message sent on a connection that has broken since. */
  isCurrent(delivery: PeerDelivery): boolean {
    return (
      Number.isNaN(delivery.epoch) ||
      delivery.epoch === (this.linkEpoch.get(`${delivery.from}>${delivery.to}`) ?? 0)
    );
  }

  /** One-way delay, ms. */
  delay(): number {
    const { minDelayMs, maxDelayMs } = this.host.conditions();
    return minDelayMs + this.host.rng.float() * (maxDelayMs - minDelayMs);
  }

  /** Held back past an election timeout or several: the message arrives in a later term, or terms. */
  private lateDelay(): number {
    const rng = this.host.rng;
    const timeout = this.host.timeouts.electionTimeoutMs;
    return rng.chance(0.7) ? rng.int(timeout, 3 * timeout) : rng.int(3 * timeout, 8 * timeout);
  }

  transmit(from: number, to: number, sent: PeerMessage): void {
    const { host } = this;
    const rng = host.rng;
    const link = `${from}>${to}`;
    if (this.blocked.has(link)) return;
    const message = host.tamper ? host.tamper(from, to, sent) : sent;
    if (message === null) return;
    if (host.holder()?.(from, to, message)) return;
    const network = host.conditions();
    if (network.dropRate > 0 && rng.chance(network.dropRate)) return;
    const epoch = this.linkEpoch.get(link) ?? 0;
    const late = (network.lateRate ?? 0) > 0 && rng.chance(network.lateRate ?? 0);
    host.deliver(late ? this.lateDelay() : this.delay(), { to, from, message, epoch });
    if (network.dupRate > 0 && rng.chance(network.dupRate)) {
      host.deliver(this.delay() * 2, { to, from, message, epoch });
    }
    host.recorder()?.(from, to, message);
    const echo = network.echoTimeoutNowRate ?? 0;
    if (message.type === 'TIMEOUT_NOW' && echo > 0 && rng.chance(echo)) {
      // The copy outlives the connection it was sent on (as a resend after a reconnect would).
      host.deliver(this.lateDelay(), { to, from, message, epoch: Number.NaN });
    }
  }
}
