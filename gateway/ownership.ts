// When a gateway must give up its party connections: the two ways its session can close under it while it
// still holds them. Pure (time comes in as arguments), so its timing is tested on a simulated clock; the
// gateway (gateway.ts) feeds it performance.now() and checks it every GUARD_EVERY_MS and before every act.
//
// - The lease: the session times out sessionTimeoutMs after the cluster last heard from the gateway; the
//   gateway holds on only while a command the cluster answered was sent less than leaseMs ago (a frozen
//   gateway, or a partition with no FIN/RST).
// - The cluster connection: the gateway asked, with closeOnDisconnectMs, that the leader close its session
//   once its connection has been gone that long. So the moment the client's connection is lost (the gateway
//   closed it, or saw it closed), the gateway holds nothing until its session is open again: dropping in the
//   same turn as its own close leaves no gap a stall (SIGSTOP, a long pause) could fall into.

export type Lapse = 'lease expired' | 'cluster connection lost';

export class Ownership {
  /** When the last command the cluster answered was sent: the lease runs from it. */
  private confirmedAt = Number.NEGATIVE_INFINITY;
  /** When the client's connection to the cluster was lost, with no session resumed since; null: connected. */
  private disconnectedAt: number | null = null;

  constructor(private readonly timing: { readonly leaseMs: number; readonly dropOnDisconnect: boolean }) {}

  /** The cluster answered a command sent at `sentAt`. */
  confirmed(sentAt: number): void {
    this.confirmedAt = Math.max(this.confirmedAt, sentAt);
  }

  /** The client's connection is gone (the first loss counts until a session is back). */
  connectionLost(now: number): void {
    if (this.disconnectedAt === null) this.disconnectedAt = now;
  }

  /** A session is open again on the leader (resumed, or a new one). */
  sessionOpen(): void {
    this.disconnectedAt = null;
  }

  /** Why the gateway may no longer own anything at `now`, or null while it may. */
  lapsed(now: number): Lapse | null {
    if (now - this.confirmedAt > this.timing.leaseMs) return 'lease expired';
    if (this.timing.dropOnDisconnect && this.disconnectedAt !== null) return 'cluster connection lost';
    return null;
  }
}
