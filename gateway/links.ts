// The gateway's outbound connections, one per party it holds, made to follow what the duties want
// (duties.ts). Each party's changes run one after another: a connection of an older epoch is closed — and
// its close seen by the remote end — before one of the new epoch opens. What opens, fails and closes is
// reported (OPENED / FAILED / CLOSED), a close only once the remote end has seen it: the registry gives the
// party to another gateway as soon as the report lands. An epoch reported CLOSED or FAILED is never opened
// again (the registry moves on to a new epoch at once), whatever the duties say later (`isEnded`).
//
// The sockets themselves are a PartyDialer's: real TCP connections speaking the stand-in's line protocol
// (tcp-dialer.ts), or the simulator's remote system (runtime/sim/sim-gateway.ts). This file decides only
// the order of things, with callbacks and no timers of its own, so the simulator runs it as it is.

import type { Wanted } from './duties.ts';

export type ReportStatus = 'OPENED' | 'FAILED' | 'CLOSED';

/** One open connection to a party's remote end. */
export interface PartyLink {
  /**
   * An orderly close, begun at once (nothing more is sent on it): `done` once the remote end has seen it,
   * or once the close timed out and the link was reset (by then the remote end's own liveness check has
   * ended a link that went silent: see tcp-dialer.ts).
   */
  close(done: () => void): void;
}

/** What a dial tells the one who asked for it. */
export interface DialEvents {
  /**
   * Asked right before the gateway announces itself to the remote end (the moment the remote end counts the
   * connection as live): false gives the dial up. A dial can outlast a freeze (SIGSTOP) of the process, or
   * the duties can move on while it runs.
   */
  proceed(): boolean;
  /** The link once the remote end accepted it, or why it could not; never before `open` returns. */
  done(result: PartyLink | string): void;
  /** The remote end ended a link that was handed over (not called after it was closed from this side). */
  remoteClosed(): void;
}

export interface PartyDialer {
  /** Open the party's connection for this assignment. */
  open(
    target: { readonly party: string; readonly epoch: number; readonly endpoint: string },
    events: DialEvents,
  ): void;
}

export interface LinksOptions {
  readonly dialer: PartyDialer;
  /**
   * An epoch this gateway ended (reported CLOSED or FAILED) is never opened (the gateway's duties.ts keeps
   * that record, fed by `report`); without it, an epoch that failed is not retried while it stays wanted.
   */
  readonly isEnded?: (party: string, epoch: number) => boolean;
  readonly report: (party: string, epoch: number, status: ReportStatus, detail?: string) => void;
  /** Called before a remote end's close is handled (the gateway checks its lease there first). */
  readonly beforeEvent?: () => void;
}

interface Held {
  readonly epoch: number;
  readonly link: PartyLink;
}

export class Links {
  private readonly held = new Map<string, Held>();
  /** Parties whose change is running now. */
  private readonly busy = new Set<string>();
  /** Parties whose wants changed while their change ran: run it again after. */
  private readonly again = new Set<string>();
  /** Callbacks waiting for a party's changes to have run. */
  private readonly waiting = new Map<string, (() => void)[]>();
  /** An epoch whose open failed is not retried while it stays wanted (when no isEnded is given). */
  private readonly failed = new Map<string, number>();
  /** Parties whose connection is being dropped (closed without a report). */
  private readonly dropping = new Set<string>();
  private target: ReadonlyMap<string, Wanted> = new Map();

  constructor(private readonly options: LinksOptions) {}

  /** The parties held open now, with their epochs. */
  get open(): Map<string, number> {
    return new Map([...this.held].map(([party, held]) => [party, held.epoch]));
  }

  /** Make the connections follow `want`; `done` once every party's change has run. */
  converge(want: ReadonlyMap<string, Wanted>, done: () => void = () => {}): void {
    this.target = want;
    const parties = new Set([...want.keys(), ...this.held.keys()]);
    let left = parties.size;
    if (left === 0) done();
    for (const party of parties) this.schedule(party, () => --left === 0 && done());
  }

  /** `done` once the changes queued for `party` have run. */
  settled(party: string, done: () => void): void {
    if (!this.busy.has(party)) done();
    else this.wait(party, done);
  }

  /**
   * Drop every connection now (ownership can no longer be confirmed): each is closed at once, ahead of
   * anything else queued, and dials under way are given up. Nothing is reported: the assignments stay this
   * gateway's in the registry (it moves them only on a report or once the session closed), and a duty list
   * that still gives them reopens the same epochs, each once its close has reached the remote end.
   */
  dropAll(): void {
    this.target = new Map();
    for (const party of [...this.held.keys()]) {
      this.dropping.add(party);
      this.schedule(party, () => {});
    }
  }

  private report(party: string, epoch: number, status: ReportStatus, detail?: string): void {
    if (status === 'FAILED') this.failed.set(party, epoch);
    this.options.report(party, epoch, status, detail);
  }

  private isEnded(party: string, epoch: number): boolean {
    return this.options.isEnded?.(party, epoch) ?? this.failed.get(party) === epoch;
  }

  private wait(party: string, done: () => void): void {
    const waiting = this.waiting.get(party);
    if (waiting) waiting.push(done);
    else this.waiting.set(party, [done]);
  }

  private schedule(party: string, done: () => void): void {
    this.wait(party, done);
    if (this.busy.has(party)) this.again.add(party);
    else this.run(party);
  }

  private run(party: string): void {
    this.busy.add(party);
    this.step(party, () => {
      if (this.again.delete(party)) {
        this.run(party);
        return;
      }
      this.busy.delete(party);
      const waiting = this.waiting.get(party) ?? [];
      this.waiting.delete(party);
      for (const done of waiting) done();
    });
  }

  /** One party's change: close what the duties no longer want, then open what they want. */
  private step(party: string, done: () => void): void {
    const want = this.target.get(party);
    const held = this.held.get(party);
    // A drop the duties overtook (they want the same epoch again) closes nothing: the mark goes either way.
    const dropped = this.dropping.delete(party);
    if (held && held.epoch !== want?.epoch) {
      this.held.delete(party);
      held.link.close(() => {
        if (!dropped) this.report(party, held.epoch, 'CLOSED');
        this.openWanted(party, want, done);
      });
      return;
    }
    this.openWanted(party, want, done);
  }

  private openWanted(party: string, want: Wanted | undefined, done: () => void): void {
    if (!want || this.held.has(party) || this.isEnded(party, want.epoch)) {
      done();
      return;
    }
    let record: Held | null = null;
    const remoteClosed = () => {
      this.options.beforeEvent?.();
      if (record === null || this.held.get(party) !== record) return;
      // The remote end closed it: the assignment is not served any more; the registry decides what next.
      this.held.delete(party);
      this.report(party, record.epoch, 'FAILED', 'the remote end closed the connection');
    };
    const wanted = () => this.target.get(party)?.epoch === want.epoch && !this.isEnded(party, want.epoch);
    let gaveUp = false;
    this.options.dialer.open(
      { party, epoch: want.epoch, endpoint: want.endpoint },
      {
        proceed: () => {
          this.options.beforeEvent?.(); // a gateway whose lease ran out drops everything first
          gaveUp = !wanted();
          return !gaveUp;
        },
        done: (opened) => {
          if (typeof opened === 'string') {
            // Given up (dropped, or the duties moved on): not opened, nothing to report.
            if (!gaveUp) this.report(party, want.epoch, 'FAILED', opened);
            done();
          } else if (!wanted()) {
            // The duties moved on while it opened (or it was dropped): never keep a connection they no
            // longer want. A close the registry asked for is reported by the gateway once settled.
            opened.close(done);
          } else {
            record = { epoch: want.epoch, link: opened };
            this.held.set(party, record);
            this.report(party, want.epoch, 'OPENED');
            done();
          }
        },
        remoteClosed,
      },
    );
  }
}
