// The Chorus client library. A client connects to any member, follows REDIRECTs to the leader, opens a
// session, and sends commands with correlation ids. It keeps every command that has not been answered
// and sends it again after it reconnects (to the same or a new leader), so a command is never lost to a
// failover (C1, C3); the service answers a resend it already applied with the original reply (C2).
// BUSY is back-pressure: that command is sent again after the delay the member asks for, with jitter (R5).
//
// The connection's life is the `clientConnectionMachine` statechart; this file carries out its effects
// (dial, send, close) through a ClientTransport (client-transport.ts: real sockets by default, the
// simulator's network in `chorus sim`) and feeds it connection events and clock ticks.

import { type Actor, createActor } from 'xstate';
import { challengeResponse } from '../../actors/sessions/authenticators.ts';
import { MAX_UNANSWERED_PER_SESSION } from '../../actors/sessions/command-dedup.ts';
import { type ClientConnectionEvent, clientConnectionMachine } from '../../machines/client-connection.ts';
import { SESSION_PROTOCOL_VERSION } from '../../machines/client-session.ts';
import { Random } from '../../machines/random.ts';
import { ClientKind, maxCommandBytes } from '../wire/client-frames.ts';
import { DEFAULT_MAX_FRAME_BYTES } from '../wire/frame-codec.ts';
import {
  type ClientOptions,
  type CommandOutcome,
  CommandTimeoutError,
  checkCloseOnDisconnectMs,
  DEFAULT_BACKOFF_BASE_MS,
  DEFAULT_BACKOFF_MAX_MS,
  DEFAULT_REPLY_TIMEOUT_MS,
  OutcomeUnknownError,
  type SessionChange,
  SessionClosedError,
} from './client-options.ts';
import {
  type ClientLink,
  type ClientTimer,
  type ClientTransport,
  socketTransport,
} from './client-transport.ts';
import { parseMemberFrame } from './member-frames.ts';

// The options, errors and defaults are part of the client library's API.
export * from './client-options.ts';

interface PendingCommand {
  readonly correlationId: number;
  readonly payload: Uint8Array;
  readonly done: (outcome: CommandOutcome) => void;
  readonly timer: ClientTimer;
  /** Sent on the current connection (reset when the connection changes). */
  sent: boolean;
  /** Not before this time (ms, the transport's clock): set by BUSY. */
  notBefore: number;
  /** When it was last sent (ms, the transport's clock). */
  sentAt: number;
}

const TICK_MS = 25;

/**
 * Call the application's handlers one by one. One that throws neither stops the others nor the client's own
 * handling of the frame or state change it came with: the error is thrown again on its own, once the client
 * is done (an uncaught exception, as from any callback of the application's).
 */
const deliver = <T>(handlers: Iterable<(value: T) => void>, value: T): void => {
  for (const handler of handlers) {
    try {
      handler(value);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }
};

export class ChorusClient {
  private readonly options: ClientOptions;
  private readonly actor: Actor<typeof clientConnectionMachine>;
  private readonly random: Random;
  private readonly transport: ClientTransport;
  private connection: ClientLink | null = null;
  /** Bumped for every dial, so events from an abandoned socket are ignored. */
  private generation = 0;
  private nextCorrelationId = 1;
  /** Commands not yet answered, in correlation order (Map keeps insertion order). */
  private readonly pending = new Map<number, PendingCommand>();
  private readonly ticker: ClientTimer;
  private closedError: SessionClosedError | null = null;
  private readonly openWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  /** When the current connection last brought a frame (ms, the transport's clock). */
  private lastHeardAt = 0;
  /** When the machine was last told a message went out (see `request`). */
  private sentNoticeAt = Number.NEGATIVE_INFINITY;
  private readonly messageHandlers = new Set<(message: unknown) => void>();
  private readonly sessionHandlers = new Set<(session: SessionChange) => void>();

  private constructor(options: ClientOptions) {
    const { replyTimeoutMs } = options;
    if (replyTimeoutMs !== undefined && !(Number.isFinite(replyTimeoutMs) && replyTimeoutMs > 0)) {
      throw new RangeError(
        `client option replyTimeoutMs is ${replyTimeoutMs}: it must be a positive number of ms (default ${DEFAULT_REPLY_TIMEOUT_MS})`,
      );
    }
    const { maxInFlight } = options;
    if (
      maxInFlight !== undefined &&
      !(Number.isInteger(maxInFlight) && maxInFlight >= 1 && maxInFlight <= MAX_UNANSWERED_PER_SESSION)
    ) {
      throw new RangeError(
        `client option maxInFlight is ${maxInFlight}: it must be an integer from 1 to ${MAX_UNANSWERED_PER_SESSION} (default 16)`,
      );
    }
    checkCloseOnDisconnectMs(options.closeOnDisconnectMs);
    this.options = options;
    this.transport = options.transport ?? socketTransport;
    const seed = options.seed ?? Math.floor(Math.random() * 0x7fffffff);
    this.random = new Random(seed ^ 0x5bd1e995);
    const machine = clientConnectionMachine.provide({
      actions: {
        dial: (_, params) => this.dial(params.endpoint, params.resumeSessionId, params.resumeToken),
        closeSocket: () => this.dropConnection(),
        answerChallenge: (_, params) => this.answerChallenge(params.challenge),
        sendKeepalive: (_, params) => {
          if (params.sessionId !== null) this.request({ type: 'KEEPALIVE', sessionId: params.sessionId });
        },
        resendUnacknowledged: () => this.onOpen(),
        abandonSession: (_, params) => this.abandonSession(params.sessionId, params.detail),
        sendClose: (_, params) => {
          if (params.sessionId !== null) this.request({ type: 'CLOSE', sessionId: params.sessionId });
        },
        notifyClosed: (_, params) => this.onClosed(params.reason ?? 'closed'),
      },
    });
    this.actor = createActor(machine, {
      input: {
        endpoints: options.endpoints,
        seed,
        now: this.transport.now(),
        maxAttempts: options.maxAttempts ?? 0,
        backoffBaseMs: options.backoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS,
        backoffMaxMs: options.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS,
        replyTimeoutMs: options.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS,
        canAnswerChallenge: options.secret !== undefined,
        ...(options.keepaliveIntervalMs === undefined
          ? {}
          : { keepaliveIntervalMs: options.keepaliveIntervalMs }),
      },
    });
    let last = '';
    let lastSessionId: number | null = null;
    this.actor.subscribe((snapshot) => {
      if (snapshot.value !== last) {
        last = snapshot.value;
        const { sessionId, leaderId } = snapshot.context;
        if (last === 'CONNECTED' && sessionId !== null && leaderId !== null) {
          const change = { sessionId, leaderId, resumed: sessionId === lastSessionId };
          lastSessionId = sessionId;
          deliver(this.sessionHandlers, change);
        }
        const { onStateChange } = options;
        if (onStateChange) {
          const info = { leaderId: snapshot.context.leaderId, sessionId: snapshot.context.sessionId };
          deliver([(state: string) => onStateChange(state, info)], last);
        }
      }
    });
    this.ticker = this.transport.every(TICK_MS, () => this.tick());
  }

  /** Connect to the cluster and resolve once a session is open on the leader. */
  static async connect(options: ClientOptions): Promise<ChorusClient> {
    const client = ChorusClient.start(options);
    await client.whenOpen();
    return client;
  }

  /** Start connecting and return at once: commands sent meanwhile wait for the session to open. */
  static start(options: ClientOptions): ChorusClient {
    const client = new ChorusClient(options);
    client.actor.start();
    return client;
  }

  /** The connection's state: CONNECTING, CONNECTED, AWAITING_NEW_LEADER, BACKING_OFF, CLOSING, CLOSED. */
  get state(): string {
    return this.actor.getSnapshot().value;
  }

  get sessionId(): number | null {
    return this.actor.getSnapshot().context.sessionId;
  }

  get leaderId(): number | null {
    return this.actor.getSnapshot().context.leaderId;
  }

  /** How many times the cluster answered a command BUSY (each was sent again after the delay it asked for). */
  busyAnswers = 0;

  /** Commands sent or queued and not yet answered. */
  get unacknowledged(): number {
    return this.pending.size;
  }

  /**
   * Send a command to the service and resolve with its reply once it is committed and applied. Rejects
   * with CommandTimeoutError if no reply came within the timeout (the outcome is then unknown), or
   * SessionClosedError if the session ended.
   */
  send(payload: Uint8Array, options: { timeoutMs?: number } = {}): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      this.submit(
        payload,
        (outcome) => ('reply' in outcome ? resolve(outcome.reply) : reject(outcome.error)),
        options,
      );
    });
  }

  /**
   * `send` with a callback instead of a promise: `done` is called once, with the reply or the error the
   * promise would reject with (a caller that must see the outcome at the moment it arrives — the
   * simulator's history — uses this).
   */
  submit(
    payload: Uint8Array,
    done: (outcome: CommandOutcome) => void,
    { timeoutMs }: { timeoutMs?: number } = {},
  ): void {
    if (this.closedError) {
      done({ error: this.closedError });
      return;
    }
    const maxBytes = maxCommandBytes({
      maxFrameBytes: this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    });
    if (payload.length > maxBytes) {
      done({
        error: new RangeError(
          `command is ${payload.length} bytes, more than the ${maxBytes} one command may carry (the cluster's maxFrameBytes sets it): split it`,
        ),
      });
      return;
    }
    const correlationId = this.nextCorrelationId++;
    const limit = timeoutMs ?? this.options.commandTimeoutMs ?? 10_000;
    const timer = this.transport.after(limit, () => {
      if (!this.pending.delete(correlationId)) return;
      done({
        error: new CommandTimeoutError(
          `command ${correlationId} had no reply within ${limit} ms; it may or may not have been applied`,
        ),
      });
      this.pump();
    });
    this.pending.set(correlationId, {
      correlationId,
      payload,
      done,
      timer,
      sent: false,
      notBefore: 0,
      sentAt: 0,
    });
    this.pump();
  }

  /** Messages services push to this session (`notify`), decoded, at most once each (lost between
   *  connections: re-read state on `onSession`); the handler checks what they mean. Returns an unsubscribe.
   *  A handler that throws stops neither the other handlers nor the client: its error is thrown again on
   *  its own afterwards (as uncaught). */
  onMessage(handler: (message: unknown) => void): () => void {
    this.messageHandlers.add(handler);
    return () => this.messageHandlers.delete(handler);
  }

  /** Called each time the session opens on a leader: the first time, after a leader change or reconnect
   *  (`resumed`: the same session), or with a new session after the old one could not be resumed. */
  onSession(handler: (session: SessionChange) => void): () => void {
    this.sessionHandlers.add(handler);
    return () => this.sessionHandlers.delete(handler);
  }

  /** Close the session and the connection. */
  async close(): Promise<void> {
    if (this.state === 'CLOSED') return;
    const closed = new Promise<void>((resolve) => {
      const sub = this.actor.subscribe((s) => {
        if (s.value === 'CLOSED') {
          sub.unsubscribe();
          resolve();
        }
      });
    });
    this.actor.send({ type: 'CLOSE', now: this.transport.now() });
    await closed;
  }

  private whenOpen(): Promise<void> {
    if (this.state === 'CONNECTED') return Promise.resolve();
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => this.openWaiters.push({ resolve, reject }));
  }

  private event(event: ClientConnectionEvent): void {
    if (this.actor.getSnapshot().status === 'active') this.actor.send(event);
  }

  /** Time passed: the machine decides from these facts whether to probe or leave a silent member. */
  private tick(): void {
    this.event({
      type: 'TICK',
      now: this.transport.now(),
      heardAt: this.lastHeardAt,
      awaitingSince: this.awaitingSince(),
    });
    this.pump();
  }

  /** When the oldest command sent on the current connection and still unanswered was sent; null if none. */
  private awaitingSince(): number | null {
    if (!this.connection) return null;
    let oldestSentAt: number | null = null;
    for (const command of this.pending.values()) {
      if (command.sent && (oldestSentAt === null || command.sentAt < oldestSentAt))
        oldestSentAt = command.sentAt;
    }
    return oldestSentAt;
  }

  /**
   * The session could not be resumed (it closed, timed out, or is not ours): a command sent on it may
   * have been applied before it ended, and can no longer be asked about, so it is rejected as of unknown
   * outcome — never resent under the new session, which could apply it a second time. A command never
   * sent (`sentAt` still 0) cannot have been applied: it stays queued for the new session.
   */
  private abandonSession(sessionId: number, detail: string): void {
    for (const [correlationId, command] of this.pending) {
      if (command.sentAt === 0) continue;
      this.pending.delete(correlationId);
      command.timer.cancel();
      command.done({
        error: new OutcomeUnknownError(
          `command ${correlationId} was sent on session ${sessionId}, which could not be resumed (${detail}): ` +
            'it may or may not have been applied; read the state back before sending it again',
        ),
      });
    }
  }

  private dial(endpoint: string, resumeSessionId: number | null, resumeToken: Uint8Array | null): void {
    this.dropConnection();
    const generation = ++this.generation;
    this.transport.dial(
      endpoint,
      {
        maxFrameBytes: this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
        name: `member at ${endpoint}`,
        timeoutMs: 1000,
      },
      {
        failed: () => {
          if (generation === this.generation)
            this.event({ type: 'CONNECTION_LOST', now: this.transport.now() });
        },
        opened: (connection) => {
          if (generation !== this.generation) {
            connection.close('superseded');
            return;
          }
          this.connection = connection;
          this.lastHeardAt = this.transport.now();
          const credentials = this.options.credentials ?? new Uint8Array(0);
          this.request({
            type: 'CONNECT',
            credentials: typeof credentials === 'string' ? Buffer.from(credentials) : credentials,
            protocolVersion: SESSION_PROTOCOL_VERSION,
            resumeSessionId,
            ...(resumeToken ? { resumeToken } : {}),
            ...(this.options.closeOnDisconnectMs === undefined
              ? {}
              : { closeOnDisconnectMs: this.options.closeOnDisconnectMs }),
          });
        },
        frame: (kind, body) => {
          if (generation !== this.generation) return;
          this.lastHeardAt = this.transport.now();
          this.onFrame(kind, body);
        },
        closed: () => {
          if (generation !== this.generation) return;
          this.connection = null;
          this.event({ type: 'CONNECTION_LOST', now: this.transport.now() });
        },
      },
    );
  }

  private dropConnection(): void {
    this.generation++;
    const connection = this.connection;
    this.connection = null;
    if (connection) connection.close('client closing the connection');
    for (const command of this.pending.values()) command.sent = false;
  }

  private request(body: object): boolean {
    const sent = this.connection?.send(ClientKind.CLIENT_REQUEST, body) ?? false;
    if (sent) {
      // The machine needs this only to hold keepalives back (due after ~1 s of silence): telling it at
      // most once per tick keeps a statechart step off the per-command path (one actor.send of
      // MESSAGE_SENT costs 18-26 µs on the loaded 2-core dev machine, 200k events).
      const now = this.transport.now();
      if (now - this.sentNoticeAt >= TICK_MS) {
        this.sentNoticeAt = now;
        this.event({ type: 'MESSAGE_SENT', now });
      }
    }
    return sent;
  }

  private answerChallenge(challenge: Uint8Array): void {
    const secret = this.options.secret;
    if (secret === undefined) return; // the machine asks only when there is one (canAnswerChallenge)
    const key = typeof secret === 'string' ? Buffer.from(secret) : secret;
    this.request({ type: 'CHALLENGE_RESPONSE', response: challengeResponse(key, challenge) });
  }

  private onFrame(kind: number, body: unknown): void {
    const now = this.transport.now();
    const frame = parseMemberFrame(kind, body, now);
    if ('problem' in frame) {
      // Refused: drop the connection as lost (the machine leaves this member and tries another).
      this.connection?.close(`refused a frame from the member: ${frame.problem}`);
      return;
    }
    switch (frame.kind) {
      case 'EVENT':
        this.event(frame.event);
        return;
      case 'ALIVE':
        // The answer to a KEEPALIVE only shows the member is alive (`lastHeardAt`, in the frame listener).
        return;
      case 'REPLY': {
        const { reply } = frame;
        const command = this.pending.get(reply.correlationId);
        if (!command) return; // a reply to a resend already answered, or to a command that timed out
        this.pending.delete(reply.correlationId);
        command.timer.cancel();
        if (reply.outcomeUnknown) {
          command.done({
            error: new OutcomeUnknownError(
              `command ${reply.correlationId}: the cluster cannot tell whether it was applied (a stale copy of it reached the log after the session stopped awaiting it)`,
            ),
          });
        } else {
          command.done({ reply: reply.payload });
        }
        this.pump();
        return;
      }
      case 'NOTIFY':
        deliver(this.messageHandlers, frame.message);
        return;
      case 'BUSY': {
        const { busy } = frame;
        const command = this.pending.get(busy.correlationId);
        if (!command) return;
        // Back off with jitter so many clients told BUSY at once do not return at once.
        this.busyAnswers++;
        command.sent = false;
        command.notBefore = now + busy.retryAfterMs * (1 + this.random.float());
        return;
      }
    }
  }

  private onOpen(): void {
    for (const waiter of this.openWaiters.splice(0)) waiter.resolve();
    for (const command of this.pending.values()) command.sent = false;
    this.pump();
  }

  /**
   * Send what may be sent: unsent commands in correlation order, only within `maxInFlight` ids of the
   * oldest unanswered one. Each carries the oldest unanswered id (`lowestAwaited`): the services remember
   * the reply of every applied command from there on, so a resend of any of them — in whatever order it
   * reaches the log — is answered with its original reply instead of being applied twice or dropped (C2),
   * and everything below it can be forgotten (actors/sessions/command-dedup.ts).
   */
  private pump(): void {
    if (this.state !== 'CONNECTED' || !this.connection) return;
    const sessionId = this.sessionId;
    if (sessionId === null) return;
    const maxInFlight = this.options.maxInFlight ?? 16;
    const now = this.transport.now();
    let oldest: number | null = null;
    for (const command of this.pending.values()) {
      oldest ??= command.correlationId;
      if (command.correlationId >= oldest + maxInFlight) break;
      if (command.sent || command.notBefore > now) continue;
      command.sent = this.request({
        type: 'SESSION_MESSAGE',
        sessionId,
        correlationId: command.correlationId,
        lowestAwaited: oldest,
        body: command.payload,
      });
      command.sentAt = now;
    }
  }

  private onClosed(reason: string): void {
    this.ticker.cancel();
    this.dropConnection();
    this.closedError = new SessionClosedError(`session closed: ${reason}`);
    for (const waiter of this.openWaiters.splice(0)) waiter.reject(this.closedError);
    const closedError = this.closedError;
    for (const command of this.pending.values()) {
      command.timer.cancel();
      command.done({ error: closedError });
    }
    this.pending.clear();
  }
}
