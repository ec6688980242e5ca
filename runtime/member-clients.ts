// A member's client edge: the client port, one framed connection per client, each frame checked before it
// becomes an input of the consensus module, and the module's client effects written back. It decides
// nothing about sessions: that is the session manager's, inside the module.

import { performance } from 'node:perf_hooks';
import type { ModuleEffect, ModuleInput } from '../actors/consensus/consensus-module.ts';
import { parseClientRequest } from '../actors/sessions/requests.ts';
import type { ClusterConfig, MemberConfig } from './config.ts';
import { maxClientConnections } from './member-recovery.ts';
import { ClientKind } from './wire/client-frames.ts';
import { type FramedConnection, type Limit, TcpListener } from './wire/transport.ts';

export type ClientEffect = Extract<
  ModuleEffect,
  { type: 'CLIENT_EVENT' | 'CLIENT_REPLY' | 'CLIENT_BUSY' | 'CLIENT_NOTIFY' | 'CLOSE_CONNECTION' }
>;

export class ClientEdge {
  private readonly listener: TcpListener;
  private readonly connections = new Map<number, FramedConnection>();
  private nextConnectionId = 1;

  constructor(
    config: ClusterConfig,
    self: MemberConfig,
    private readonly input: (input: ModuleInput) => void,
  ) {
    this.listener = new TcpListener(
      {
        host: self.host,
        port: self.clientPort,
        maxConnections: { value: maxClientConnections(config), setting: 'limits.maxClientConnections' },
        maxConnectionsPerAddress: limit(config, 'maxConnectionsPerAddress'),
        handshakeTimeoutMs: limit(config, 'handshakeTimeoutMs'),
        idleTimeoutMs: limit(config, 'idleTimeoutMs'),
        maxFrameBytes: config.maxFrameBytes,
        name: `member ${self.id} client port`,
      },
      (connection) => this.accept(connection),
    );
  }

  start(): Promise<void> {
    return this.listener.start();
  }

  stop(reason: string): Promise<void> {
    return this.listener.stop(reason);
  }

  execute(effect: ClientEffect): void {
    const connection = this.connections.get(effect.connectionId);
    if (!connection) return;
    switch (effect.type) {
      case 'CLIENT_EVENT':
        connection.send(ClientKind.SESSION_EVENT, effect.event);
        return;
      case 'CLIENT_REPLY':
        connection.send(
          ClientKind.REPLY,
          effect.outcomeUnknown
            ? { correlationId: effect.correlationId, payload: effect.payload, outcomeUnknown: true }
            : { correlationId: effect.correlationId, payload: effect.payload },
        );
        return;
      case 'CLIENT_BUSY':
        connection.send(ClientKind.BUSY, {
          correlationId: effect.correlationId,
          retryAfterMs: effect.retryAfterMs,
          detail: effect.detail,
        });
        return;
      case 'CLIENT_NOTIFY':
        connection.send(ClientKind.NOTIFY, { payload: effect.payload });
        return;
      case 'CLOSE_CONNECTION':
        connection.close(effect.reason);
        return;
    }
  }

  /** The edge: a frame of another kind, or a request that does not parse, closes the connection with why. */
  private accept(connection: FramedConnection): void {
    const connectionId = this.nextConnectionId++;
    this.connections.set(connectionId, connection);
    this.client({ type: 'CONNECTION_OPENED', now: performance.now(), connectionId });
    connection.on('frame', (kind, body) => {
      if (kind !== ClientKind.CLIENT_REQUEST) {
        connection.close(
          `unexpected frame kind ${kind}: clients send CLIENT_REQUEST (${ClientKind.CLIENT_REQUEST})`,
        );
        return;
      }
      const parsed = parseClientRequest(connectionId, performance.now(), body);
      if (!parsed.ok) {
        connection.send(ClientKind.SESSION_EVENT, { code: 'ERROR', detail: parsed.error, retryable: false });
        connection.close(parsed.error);
        return;
      }
      connection.establish(); // a well-formed request: the handshake timeout ends, the idle timeout starts
      this.client(parsed.input);
    });
    connection.once('close', () => {
      this.connections.delete(connectionId);
      this.client({ type: 'CONNECTION_CLOSED', now: performance.now(), connectionId });
    });
  }

  private client(input: Extract<ModuleInput, { type: 'CLIENT' }>['input']): void {
    this.input({ type: 'CLIENT', input });
  }
}

/** A limit of the configuration, with the setting that raises it (for refusal messages). */
export const limit = (
  config: ClusterConfig,
  name: Exclude<keyof ClusterConfig['limits'], 'maxClientConnections'>,
): Limit => ({ value: config.limits[name], setting: `limits.${name}` });
