// The session manager specs' harness: a leader and a follower sharing a log (session-manager.spec.ts,
// close-on-disconnect.spec.ts).

import type { LogEntry } from '../../../actors/log/log-entry.ts';
import {
  seededNonceSource,
  sharedTokenAuthenticator,
  textBytes,
} from '../../../actors/sessions/authenticators.ts';
import type {
  SessionEffect,
  SessionEventToClient,
  SessionInput,
  SessionManagerOptions,
} from '../../../actors/sessions/session-manager.ts';
import { SessionManager } from '../../../actors/sessions/session-manager.ts';
import type { LeaderView } from '../../../machines/client-session.ts';
import { SESSION_PROTOCOL_VERSION } from '../../../machines/client-session.ts';

export const TOKEN = 'a-shared-token-of-32-bytes-length';
export const TIMEOUT = 1000;
export const LEADER_ID = 1;
export const LEADER: LeaderView = { kind: 'OTHER', leaderId: LEADER_ID, endpoint: 'm1:9010' };

export const options = (overrides: Partial<SessionManagerOptions> = {}): SessionManagerOptions => ({
  memberId: LEADER_ID,
  maxSessions: 2,
  sessionTimeoutMs: TIMEOUT,
  authenticator: sharedTokenAuthenticator({ token: TOKEN }),
  resumeTokens: seededNonceSource(overrides.memberId ?? LEADER_ID),
  ...overrides,
});

/**
 * A leader and a follower sharing a log: the leader's APPENDs get the next index (and an
 * OPEN_APPENDED answer for opens); `commit()` hands every new entry to both, as a quorum would.
 */
export class TwoMembers {
  readonly log: LogEntry[] = [];
  committedUpTo = 0;
  readonly leader: SessionManager;
  readonly follower: SessionManager;
  /** Everything the leader sent, by connection. */
  readonly sent = new Map<number, SessionEventToClient[]>();
  readonly closedConnections = new Map<number, string>();

  constructor(overrides: Partial<SessionManagerOptions> = {}) {
    this.leader = new SessionManager(options(overrides));
    this.follower = new SessionManager(options({ ...overrides, memberId: 2 }));
    this.feed({ type: 'ROLE_CHANGED', now: 0, leader: { kind: 'SELF' } });
    this.follower.handle({ type: 'ROLE_CHANGED', now: 0, leader: LEADER });
  }

  /** Feed the leader and carry out its effects; returns them. */
  feed(input: SessionInput): SessionEffect[] {
    const effects = this.leader.handle(input);
    for (const effect of effects) {
      if (effect.type === 'SEND') {
        this.sent.set(effect.connectionId, [...(this.sent.get(effect.connectionId) ?? []), effect.event]);
      } else if (effect.type === 'CLOSE_CONNECTION') {
        this.closedConnections.set(effect.connectionId, effect.reason);
      } else if (effect.type === 'APPEND') {
        const index = this.log.length + 1;
        this.log.push({
          index,
          term: 1,
          timestamp: 1_000_000 + index,
          kind: effect.kind,
          payload: effect.payload,
        });
        if (effect.connectionId !== undefined) {
          this.feed({ type: 'OPEN_APPENDED', now: input.now, connectionId: effect.connectionId, index });
        }
      }
    }
    return effects;
  }

  /** Commit everything appended so far on both members (the follower a little later). */
  commit(now: number): void {
    for (; this.committedUpTo < this.log.length; this.committedUpTo++) {
      const entry = this.log[this.committedUpTo];
      this.feed({ type: 'COMMITTED', now, entry });
      // Members apply at different local times; the replicated state must not depend on them.
      this.follower.handle({ type: 'COMMITTED', now: now + 7, entry });
    }
  }

  /** Open a session (or resume one, with `extra.resumeSessionId` and `resumeToken`) and commit. */
  connect(
    connectionId: number,
    now = 0,
    credentials = TOKEN,
    extra: Pick<
      Extract<SessionInput, { type: 'CONNECT' }>,
      'resumeSessionId' | 'resumeToken' | 'closeOnDisconnectMs'
    > = {},
  ): SessionEventToClient | undefined {
    this.feed({ type: 'CONNECTION_OPENED', now, connectionId });
    this.feed({
      type: 'CONNECT',
      now,
      connectionId,
      credentials: textBytes(credentials),
      protocolVersion: SESSION_PROTOCOL_VERSION,
      ...extra,
    });
    this.commit(now);
    return this.last(connectionId);
  }

  last(connectionId: number): SessionEventToClient | undefined {
    return this.sent.get(connectionId)?.at(-1);
  }

  /** The resume token the leader issued in this connection's OK. */
  tokenOf(connectionId: number): Uint8Array {
    const ok = this.sent.get(connectionId)?.find((event) => event.code === 'OK');
    if (ok?.code !== 'OK' || !ok.resumeToken)
      throw new Error(`connection ${connectionId} got no resume token`);
    return ok.resumeToken;
  }

  sessionIdOf(connectionId: number): number {
    const event = this.last(connectionId);
    if (event?.code !== 'OK')
      throw new Error(`connection ${connectionId} has no OK: ${JSON.stringify(event)}`);
    return event.sessionId;
  }
}
