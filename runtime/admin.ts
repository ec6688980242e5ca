// The admin channel of a running member: a Unix socket in the member directory (`admin.sock`), speaking
// the same framed protocol as peers and clients. The cluster tool uses it to ask a member for its status
// and to request operator actions (snapshot, suspend, resume, leadership transfer), as Aeron's ClusterTool
// does through the member's mark and control files. Only processes that can reach the directory can use it.

import { existsSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { FramedConnection } from './transport.ts';

export const ADMIN_SOCKET = 'admin.sock';

export const AdminKind = {
  REQUEST: 30,
  RESPONSE: 31,
} as const;

export type AdminCommand = 'status' | 'snapshot' | 'suspend' | 'resume' | 'transfer-leadership';

export interface AdminRequest {
  readonly command: AdminCommand;
  /** For transfer-leadership: the member to hand over to (default: the most up-to-date follower). */
  readonly to?: number;
}

export type AdminResponse =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly error: string };

export const adminSocketPath = (memberDir: string): string => join(memberDir, ADMIN_SOCKET);

/** Serve admin requests on `<memberDir>/admin.sock` until stopped. */
export class AdminServer {
  private server: Server | null = null;

  constructor(
    private readonly memberDir: string,
    private readonly handler: (request: AdminRequest) => Promise<unknown> | unknown,
  ) {}

  async start(): Promise<void> {
    const path = adminSocketPath(this.memberDir);
    // A socket file left by a member that was killed: this process holds the directory lock, so it is stale.
    if (existsSync(path)) rmSync(path, { force: true });
    const server = createServer((socket) => {
      const connection = new FramedConnection(socket, { maxFrameBytes: 1 << 20, name: 'admin client' });
      connection.on('frame', (kind, body) => {
        if (kind !== AdminKind.REQUEST) {
          connection.close(`unexpected frame kind ${kind} on the admin socket`);
          return;
        }
        void this.answer(connection, body as AdminRequest);
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
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
        const response = body as AdminResponse;
        if (kind !== AdminKind.RESPONSE) reject(new Error(`unexpected answer kind ${kind} from the member`));
        else if (response.ok) resolve(response.result);
        else reject(new Error(response.error));
      });
      connection.send(AdminKind.REQUEST, request);
    });
  });
