// The admin channel of a running member: a Unix socket in the member directory (`admin.sock`), speaking
// the same framed protocol as peers and clients. The cluster tool uses it to ask a member for its status
// and to request operator actions (snapshot, suspend, resume, leadership transfer), as Aeron's ClusterTool
// does through the member's mark and control files. Only processes that can reach the directory (0700) can
// use it; even so it has limits: connections at once, a first request within the handshake timeout, and an
// idle timeout, each refusal naming the setting (limits.maxAdminConnections, ...).

import { existsSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import {
  AdminKind,
  type AdminRequest,
  type AdminResponse,
  parseAdminRequest,
  parseAdminResponse,
} from './wire/admin-frames.ts';
import { FramedConnection, type Limit, TcpListener } from './wire/transport.ts';

export const ADMIN_SOCKET = 'admin.sock';

export const adminSocketPath = (memberDir: string): string => join(memberDir, ADMIN_SOCKET);

export interface AdminLimits {
  readonly maxConnections: Limit;
  readonly handshakeTimeoutMs: Limit;
  readonly idleTimeoutMs: Limit;
}

/** Serve admin requests on `<memberDir>/admin.sock` until stopped. */
export class AdminServer {
  private readonly listener: TcpListener;

  constructor(
    private readonly memberDir: string,
    limits: AdminLimits,
    private readonly handler: (request: AdminRequest) => Promise<unknown> | unknown,
  ) {
    this.listener = new TcpListener(
      { path: adminSocketPath(memberDir), maxFrameBytes: 1 << 20, name: 'admin socket', ...limits },
      (connection) =>
        connection.on('frame', (kind, body) => {
          if (kind !== AdminKind.REQUEST) {
            connection.close(`unexpected frame kind ${kind} on the admin socket`);
            return;
          }
          connection.establish();
          const request = parseAdminRequest(body);
          if (typeof request === 'string') connection.send(AdminKind.RESPONSE, { ok: false, error: request });
          else void this.answer(connection, request);
        }),
    );
  }

  async start(): Promise<void> {
    const path = adminSocketPath(this.memberDir);
    // A socket file left by a member that was killed: this process holds the directory lock, so it is stale.
    if (existsSync(path)) rmSync(path, { force: true });
    await this.listener.start();
  }

  async stop(): Promise<void> {
    await this.listener.stop();
    rmSync(adminSocketPath(this.memberDir), { force: true });
  }

  private async answer(connection: FramedConnection, request: AdminRequest): Promise<void> {
    let response: AdminResponse;
    try {
      response = { ok: true, result: await this.handler(request) };
    } catch (error) {
      response = { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
    connection.send(AdminKind.RESPONSE, response);
  }
}

/** Send one admin request to the member whose directory is `memberDir`. */
export const adminRequest = (memberDir: string, request: AdminRequest, timeoutMs = 5000): Promise<unknown> =>
  new Promise((resolve, reject) => {
    const path = adminSocketPath(memberDir);
    if (!existsSync(path)) {
      reject(
        new Error(
          `no member is running in ${memberDir} (no ${ADMIN_SOCKET}); start it with \`npx chorus member\``,
        ),
      );
      return;
    }
    const socket = createConnection(path);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(`the member in ${memberDir} did not answer "${request.command}" within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new Error(
          error.code === 'ECONNREFUSED'
            ? `no member is running in ${memberDir} (its admin socket refuses connections: the member stopped or was killed)`
            : `cannot reach the member in ${memberDir}: ${error.message}`,
        ),
      );
    });
    socket.once('connect', () => {
      const connection = new FramedConnection(socket, {
        maxFrameBytes: 16 << 20,
        name: 'member admin socket',
      });
      connection.on('frame', (kind, body) => {
        clearTimeout(timer);
        connection.close('done');
        const response = parseAdminResponse(body);
        if (kind !== AdminKind.RESPONSE) reject(new Error(`unexpected answer kind ${kind} from the member`));
        else if (typeof response === 'string')
          reject(new Error(`the member's answer is not understood: ${response}`));
        else if (response.ok) resolve(response.result);
        else reject(new Error(response.error));
      });
      connection.send(AdminKind.REQUEST, request);
    });
  });
