// What a TestCluster's clients sent and were answered, recorded where the client library meets the
// simulated network: a ClientTransport that wraps the simulator's. Whatever API a test drives the real
// ChorusClient through (send, submit, serviceClient), every command it puts on the wire is seen here with
// its session and correlation id, and every reply that comes back with the time it arrived. The checks
// (checks.ts) read this record: acknowledged commands against the committed log, and the history of the
// services that declare a model against that model.

import type { ClientTransport, DialEvents } from '../../client/client-transport.ts';
import { ClientKind } from '../../wire/client-frames.ts';

/** One command one client sent, by correlation id. */
export interface RecordedCommand {
  readonly client: number;
  readonly correlationId: number;
  /** The service's bytes, as the client sent them. */
  readonly body: Uint8Array;
  /** The sessions it was sent on (one, unless it waited unsent while a session was replaced). */
  readonly sessions: Set<number>;
  /** Virtual ms it was first put on the wire. */
  readonly call: number;
  /** Virtual ms its first reply arrived (null: none yet, or never). */
  ret: number | null;
  /** That reply's payload (null: no reply, or one saying the outcome is unknown). */
  reply: Uint8Array | null;
  /** The cluster answered that it cannot tell whether the command was applied. */
  outcomeUnknown: boolean;
}

const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

export class CommandRecorder {
  /** Every command, in the order first sent. */
  readonly commands: RecordedCommand[] = [];
  private readonly byClient = new Map<number, Map<number, RecordedCommand>>();

  constructor(private readonly now: () => number) {}

  /** The transport client `client` runs on: `base`, with what crosses it recorded. */
  transport(client: number, base: ClientTransport): ClientTransport {
    const commands = new Map<number, RecordedCommand>();
    this.byClient.set(client, commands);
    return {
      now: base.now,
      after: base.after,
      every: base.every,
      dial: (endpoint, options, events) =>
        base.dial(endpoint, options, {
          failed: () => events.failed(),
          closed: () => events.closed(),
          opened: (link) =>
            events.opened({
              close: (reason) => link.close(reason),
              send: (kind, body) => {
                const sent = link.send(kind, body);
                if (sent && kind === ClientKind.CLIENT_REQUEST) this.sent(client, commands, body);
                return sent;
              },
            }),
          frame: (kind, body) => {
            if (kind === ClientKind.REPLY) this.replied(commands, body);
            events.frame(kind, body);
          },
        } satisfies DialEvents),
    };
  }

  private sent(client: number, commands: Map<number, RecordedCommand>, body: unknown): void {
    const request = body as { type?: unknown; sessionId?: unknown; correlationId?: unknown; body?: unknown };
    if (request?.type !== 'SESSION_MESSAGE') return;
    const { sessionId, correlationId } = request;
    if (!isCount(sessionId) || !isCount(correlationId) || !(request.body instanceof Uint8Array)) return;
    const known = commands.get(correlationId);
    if (known) {
      known.sessions.add(sessionId);
      return;
    }
    const command: RecordedCommand = {
      client,
      correlationId,
      body: request.body,
      sessions: new Set([sessionId]),
      call: this.now(),
      ret: null,
      reply: null,
      outcomeUnknown: false,
    };
    commands.set(correlationId, command);
    this.commands.push(command);
  }

  private replied(commands: Map<number, RecordedCommand>, body: unknown): void {
    const frame = body as { correlationId?: unknown; payload?: unknown; outcomeUnknown?: unknown };
    if (!isCount(frame?.correlationId) || !(frame.payload instanceof Uint8Array)) return;
    const command = commands.get(frame.correlationId);
    if (!command || command.ret !== null) return; // the client, too, takes the first reply only
    command.ret = this.now();
    if (frame.outcomeUnknown === true) command.outcomeUnknown = true;
    else command.reply = frame.payload;
  }
}
