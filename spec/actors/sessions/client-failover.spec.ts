// The client's connection statechart against real session managers on three members, over a
// scripted in-memory network: the two halves of the session protocol must fit together.

import { expect } from 'chai';
import type { SnapshotFrom } from 'xstate';
import { initialTransition, transition } from 'xstate';
import type { LogEntry } from '../../../actors/log/log-entry.ts';
import { EntryKind } from '../../../actors/log/log-entry.ts';
import { encodeSessionMessage } from '../../../actors/log/session-message.ts';
import {
  allowAllAuthenticator,
  seededNonceSource,
  textBytes,
} from '../../../actors/sessions/authenticators.ts';
import type { SessionEffect } from '../../../actors/sessions/session-manager.ts';
import { SessionManager } from '../../../actors/sessions/session-manager.ts';
import type { ClientConnectionEvent } from '../../../machines/client-connection.ts';
import { clientConnectionMachine } from '../../../machines/client-connection.ts';
import { SESSION_PROTOCOL_VERSION } from '../../../machines/client-session.ts';

const endpointOf = (memberId: number): string => `m${memberId}:9010`;

/** The client, with the backoff the client library uses (runtime/client/client.ts: 20 ms to 200 ms). */
const CLIENT_INPUT = {
  endpoints: [endpointOf(1), endpointOf(0), endpointOf(2)],
  seed: 7,
  now: 0,
  backoffBaseMs: 20,
  backoffMaxMs: 200,
};

class Cluster {
  readonly members = [0, 1, 2].map(
    (memberId) =>
      new SessionManager({
        memberId,
        maxSessions: 10,
        sessionTimeoutMs: 10_000,
        authenticator: allowAllAuthenticator(),
        resumeTokens: seededNonceSource(memberId),
      }),
  );
  readonly alive = new Set([0, 1, 2]);
  /** Members stopped (SIGSTOP): a connection to one opens, and nothing ever answers. */
  readonly frozen = new Set<number>();
  readonly log: LogEntry[] = [];
  /** What the client library would do: its current socket, and what it has seen. */
  client: SnapshotFrom<typeof clientConnectionMachine>;
  socket: { connectionId: number; memberId: number } | null = null;
  nextConnectionId = 1;
  readonly clientActions: string[] = [];
  /** The member of every dial, in order. */
  readonly dialled: number[] = [];
  now = 0;

  constructor() {
    this.elect(0);
    const [snapshot, actions] = initialTransition(clientConnectionMachine, CLIENT_INPUT);
    this.client = snapshot;
    this.runClientActions(actions);
  }

  elect(leaderId: number): void {
    for (const memberId of this.alive) {
      const leader =
        memberId === leaderId
          ? ({ kind: 'SELF' } as const)
          : ({ kind: 'OTHER', leaderId, endpoint: endpointOf(leaderId) } as const);
      this.apply(memberId, this.members[memberId].handle({ type: 'ROLE_CHANGED', now: this.now, leader }));
    }
  }

  crash(memberId: number): void {
    this.alive.delete(memberId);
    if (this.socket?.memberId === memberId) {
      this.socket = null;
      this.toClient({ type: 'CONNECTION_LOST', now: this.now });
    }
  }

  /** Carry out a member's effects: appends commit at once on every live member. */
  apply(memberId: number, effects: SessionEffect[]): void {
    for (const effect of effects) {
      if (effect.type === 'APPEND' || effect.type === 'FORWARD') {
        // The consensus module appends a FORWARD as a SESSION_MESSAGE entry.
        const entry: LogEntry = {
          index: this.log.length + 1,
          term: 1,
          timestamp: this.now,
          kind: effect.type === 'APPEND' ? effect.kind : EntryKind.SESSION_MESSAGE,
          payload:
            effect.type === 'APPEND'
              ? effect.payload
              : encodeSessionMessage(
                  effect.sessionId,
                  effect.correlationId,
                  effect.lowestAwaited,
                  effect.body,
                ),
        };
        this.log.push(entry);
        if (effect.type === 'APPEND' && effect.connectionId !== undefined) {
          const input = {
            type: 'OPEN_APPENDED',
            now: this.now,
            connectionId: effect.connectionId,
            index: entry.index,
          };
          this.apply(memberId, this.members[memberId].handle(input as never));
        }
        for (const id of this.alive)
          this.apply(id, this.members[id].handle({ type: 'COMMITTED', now: this.now, entry }));
      } else if (this.socket?.connectionId !== effect.connectionId) {
        // A socket the client has already closed delivers nothing more to it (the library must
        // tie socket events to the socket it currently holds).
      } else if (effect.type === 'SEND') {
        const { code, ...fields } = effect.event;
        this.toClient({ type: code, now: this.now, ...fields } as ClientConnectionEvent);
      } else {
        this.socket = null;
        this.toClient({ type: 'CONNECTION_LOST', now: this.now });
      }
    }
  }

  toClient(event: ClientConnectionEvent): void {
    const [next, actions] = transition(clientConnectionMachine, this.client, event);
    this.client = next;
    this.runClientActions(actions);
  }

  private runClientActions(actions: Array<{ type: string; params?: unknown }>): void {
    for (const action of actions) {
      this.clientActions.push(action.type);
      if (action.type === 'closeSocket') {
        this.socket = null;
      } else if (action.type === 'dial') {
        const { endpoint, resumeSessionId, resumeToken } = action.params as {
          endpoint: string;
          resumeSessionId: number | null;
          resumeToken: Uint8Array | null;
        };
        const memberId = Number(endpoint.slice(1, endpoint.indexOf(':')));
        this.dialled.push(memberId);
        if (!this.alive.has(memberId)) {
          this.toClient({ type: 'CONNECTION_LOST', now: this.now });
          continue;
        }
        const connectionId = this.nextConnectionId++;
        this.socket = { connectionId, memberId };
        if (this.frozen.has(memberId)) continue;
        const member = this.members[memberId];
        this.apply(memberId, member.handle({ type: 'CONNECTION_OPENED', now: this.now, connectionId }));
        this.apply(
          memberId,
          member.handle({
            type: 'CONNECT',
            now: this.now,
            connectionId,
            credentials: textBytes('trader-7'),
            protocolVersion: SESSION_PROTOCOL_VERSION,
            resumeSessionId,
            resumeToken,
          }),
        );
      }
    }
  }

  /** Let simulated time pass in steps of 10 ms until the client is CONNECTED (or a limit). */
  runUntilConnected(limitMs: number): void {
    const end = this.now + limitMs;
    while (this.client.value !== 'CONNECTED' && this.now < end) {
      this.now += 10;
      this.toClient({ type: 'TICK', now: this.now });
    }
  }
}

describe('client connection against session managers', () => {
  it('C6 + C1: redirected to the leader, then after the leader dies it finds the new one and resumes its session', () => {
    const cluster = new Cluster();
    expect(cluster.client.value).to.equal('CONNECTED');
    expect(cluster.client.context.leaderId, 'C6: the follower named the leader').to.equal(0);
    const sessionId = cluster.client.context.sessionId as number;
    expect(cluster.members.map((member) => member.list().length)).to.deep.equal([1, 1, 1]);
    cluster.apply(
      0,
      cluster.members[0].handle({
        type: 'SESSION_MESSAGE',
        now: 5,
        lowestAwaited: 0,
        connectionId: cluster.socket?.connectionId as number,
        sessionId,
        correlationId: 1,
        body: new Uint8Array([1]),
      }),
    );

    cluster.now = 100;
    cluster.crash(0);
    expect(cluster.client.value).to.equal('AWAITING_NEW_LEADER');
    cluster.elect(1);
    cluster.runUntilConnected(5_000);

    expect(cluster.client.value).to.equal('CONNECTED');
    expect(cluster.client.context).to.include({ sessionId, leaderId: 1 });
    expect(cluster.log.map((entry) => entry.kind)).to.deep.equal([
      EntryKind.SESSION_OPEN,
      EntryKind.SESSION_MESSAGE,
    ]);
    expect(cluster.members[1].list()[0]).to.include({ id: sessionId, state: 'OPEN' });
    expect(cluster.members[1].list()[0].connectionId).to.equal(cluster.socket?.connectionId);
    // Follower → redirect → leader; then, the dead leader skipped, the member after it in the client's
    // seeded order (m2, m0, m1 for seed 7), which is the new leader.
    expect(cluster.client.context.endpoints).to.deep.equal([endpointOf(2), endpointOf(0), endpointOf(1)]);
    expect(cluster.clientActions).to.deep.equal([
      ...['dial', 'closeSocket', 'dial', 'resendUnacknowledged'],
      ...['dial', 'resendUnacknowledged'],
    ]);
  });

  it('issue 10: a leader cut off from its peers steps down — its client leaves it and finds the new leader, never retrying the isolated one', () => {
    const cluster = new Cluster();
    const sessionId = cluster.client.context.sessionId as number;
    const dialsBefore = cluster.dialled.length;
    // Member 0 loses its quorum and steps down; it still answers clients, but knows of no leader. The
    // other two have not elected yet either.
    cluster.now = 500;
    for (const memberId of [0, 1, 2]) {
      cluster.apply(
        memberId,
        cluster.members[memberId].handle({
          type: 'ROLE_CHANGED',
          now: cluster.now,
          leader: { kind: 'UNKNOWN' },
        }),
      );
    }
    expect(cluster.client.value).to.equal('AWAITING_NEW_LEADER');
    cluster.runUntilConnected(400);
    expect(cluster.client.value, 'no leader anywhere yet').to.not.equal('CONNECTED');
    // Member 1 wins among the two that can still talk; member 0 stays cut off, without a leader.
    for (const memberId of [1, 2]) {
      const leader =
        memberId === 1
          ? ({ kind: 'SELF' } as const)
          : ({ kind: 'OTHER', leaderId: 1, endpoint: endpointOf(1) } as const);
      cluster.apply(
        memberId,
        cluster.members[memberId].handle({ type: 'ROLE_CHANGED', now: cluster.now, leader }),
      );
    }
    const electedAt = cluster.now;
    cluster.runUntilConnected(5_000);
    expect(cluster.client.value).to.equal('CONNECTED');
    expect(cluster.client.context).to.include({ sessionId, leaderId: 1 });
    const tries = cluster.dialled.slice(dialsBefore);
    expect(tries, 'the isolated former leader is never tried again').to.not.include(0);
    expect(new Set(tries)).to.deep.equal(new Set([1, 2]));
    // Found within one backoff ceiling (and one 10 ms step of simulated time) of the election.
    expect(cluster.now - electedAt).to.be.at.most(CLIENT_INPUT.backoffMaxMs + 10);
  });

  it('issue 10: a frozen leader — members that have not noticed yet still name it, and the client does not go back to it', () => {
    const cluster = new Cluster();
    const sessionId = cluster.client.context.sessionId as number;
    const dialsBefore = cluster.dialled.length;
    // The leader stops. The library finds the connection silent and drops it; the followers' heartbeat
    // timeout has not run out yet, so they still name member 0 as the leader.
    cluster.now = 100;
    cluster.frozen.add(0);
    cluster.socket = null;
    cluster.toClient({ type: 'CONNECTION_LOST', now: cluster.now });
    cluster.runUntilConnected(300);
    expect(cluster.client.value).to.not.equal('CONNECTED');
    expect(cluster.dialled.slice(dialsBefore), 'redirects to the frozen member not followed').to.not.include(
      0,
    );
    expect(cluster.client.context.lastError).to.include('which this client has just left');
    // Then they notice, and elect member 1.
    for (const memberId of [1, 2]) {
      const leader =
        memberId === 1
          ? ({ kind: 'SELF' } as const)
          : ({ kind: 'OTHER', leaderId: 1, endpoint: endpointOf(1) } as const);
      cluster.apply(
        memberId,
        cluster.members[memberId].handle({ type: 'ROLE_CHANGED', now: cluster.now, leader }),
      );
    }
    const electedAt = cluster.now;
    cluster.runUntilConnected(5_000);
    expect(cluster.client.context).to.include({ sessionId, leaderId: 1 });
    expect(cluster.dialled.slice(dialsBefore), 'the frozen member is never dialled').to.not.include(0);
    expect(cluster.now - electedAt).to.be.at.most(CLIENT_INPUT.backoffMaxMs + 10);
  });

  it('C5: a session whose client never returns is closed by the new leader with TIMEOUT, on every member', () => {
    const cluster = new Cluster();
    const sessionId = cluster.client.context.sessionId as number;
    cluster.now = 100;
    cluster.socket = null; // the client process vanishes with the leader
    cluster.crash(0);
    cluster.elect(1);
    cluster.now = 100 + 9_999;
    cluster.apply(1, cluster.members[1].handle({ type: 'TICK', now: cluster.now }));
    expect(cluster.members[2].list()).to.have.length(1);
    cluster.now += 1;
    cluster.apply(1, cluster.members[1].handle({ type: 'TICK', now: cluster.now }));
    expect(cluster.log.at(-1)?.kind).to.equal(EntryKind.SESSION_CLOSE);
    expect(cluster.members[1].list()).to.deep.equal([]);
    expect(cluster.members[2].list(), 'followers apply the close too').to.deep.equal([]);
    expect(cluster.members[1].toSnapshot()).to.deep.equal(cluster.members[2].toSnapshot());
    expect(sessionId).to.equal(1);
  });
});
