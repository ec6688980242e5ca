// `chorus inspect`: the inspector's web server. It serves the page (runtime/inspector/page/, shipped in
// the package: no network needed), lists the members (`/api/members`: each one's admin URL and whether it
// answers), passes `/api/member/ID/...` through to that member's admin HTTP API, and multiplexes every
// member's `/live` socket onto one WebSocket, `/api/live` (each message gains a `member` field; each
// member's state deltas are merged for pages that attach later; the actors pages watch, watch.ts, are told
// to each member as the union over its pages). A member's socket is opened only while a page is attached,
// and is redialled with the one backoff (machines/random.ts) until the member answers again: across
// restarts and leader changes.
//
// It binds loopback only; members' admin listeners elsewhere are reached with their bearer token.

import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';
import { backoffDelay, type RandomState, seedRandom } from '../../machines/random.ts';
import { adminHttpUrl, type ClusterConfig } from '../config.ts';
import { HttpError, pathSegment, requestUrl, sendError, sendJson } from './http.ts';
import { MAX_WATCHED_ACTORS, parseWatch, watchedAddress } from './watch.ts';

interface WatchedActor {
  readonly member: number;
  readonly address: string;
}

const PAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'page');
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
};
/** How long a member may take to answer before it counts as down. */
export const MEMBER_TIMEOUT_MS = 2_000;
const REDIAL_BASE_MS = 100;
const REDIAL_MAX_MS = 2_000;

export interface InspectedEndpoint {
  readonly id: number;
  /** The member's admin HTTP base URL (`http://host:port`). */
  readonly url: string;
}

export interface InspectorOptions {
  readonly members: readonly InspectedEndpoint[];
  /** The bearer token members' admin listeners require (adminHttp.token), if any. */
  readonly token?: string;
  /** Port on 127.0.0.1 (0: any free port). */
  readonly port?: number;
}

/** The members of a configuration that have an admin HTTP listener. */
export const endpointsOf = (config: ClusterConfig): InspectedEndpoint[] =>
  config.members.flatMap((m) => {
    const url = adminHttpUrl(config, m);
    return url === null ? [] : [{ id: m.id, url }];
  });

/**
 * `--cluster` endpoints: admin URLs separated by commas, each `http://host:port` (member ids 0, 1, ... in
 * order) or `ID=http://host:port`. Throws naming the one that does not parse.
 */
export const parseEndpoints = (text: string): InspectedEndpoint[] =>
  text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part, i) => {
      const match = /^(?:(\d+)=)?(.+)$/.exec(part)!;
      const id = match[1] === undefined ? i : Number(match[1]);
      let url: URL;
      try {
        url = new URL(/^[a-z]+:\/\//.test(match[2]) ? match[2] : `http://${match[2]}`);
      } catch {
        throw new Error(
          `--cluster: "${part}" is not an admin URL (write http://host:port or ID=http://host:port)`,
        );
      }
      if (url.protocol !== 'http:')
        throw new Error(`--cluster: "${part}" must be an http:// admin URL (the member's adminHttpPort)`);
      return { id, url: url.origin };
    });

/** One member's `/live`, shared by every attached page, redialled until closed. */
class MemberLink {
  private socket: WebSocket | null = null;
  private redial: NodeJS.Timeout | null = null;
  private attempt = 0;
  private random: RandomState;
  private closed = false;
  /** The member's state as its last `state` and the `delta`s since left it, for a page that attaches later. */
  private state: Record<string, unknown> | null = null;
  down: string | null = 'not connected yet';
  private watched: readonly string[] = [];

  constructor(
    readonly member: InspectedEndpoint,
    private readonly token: string | undefined,
    private readonly deliver: (text: string) => void,
  ) {
    this.random = seedRandom(member.id + 1);
  }

  open(): void {
    if (this.closed || this.socket) return;
    const url = `${this.member.url.replace(/^http/, 'ws')}/live`;
    const headers = this.token ? { authorization: `Bearer ${this.token}` } : undefined;
    const socket = new WebSocket(url, { headers, handshakeTimeout: MEMBER_TIMEOUT_MS });
    this.socket = socket;
    socket.on('open', () => {
      this.attempt = 0;
      this.down = null;
      this.deliver(JSON.stringify({ member: this.member.id, type: 'up' }));
      if (this.watched.length > 0) socket.send(JSON.stringify({ type: 'watch', actors: this.watched }));
    });
    socket.on('message', (data) => {
      const text = data.toString();
      if (!text.startsWith('{')) return;
      const wrapped = `{"member":${this.member.id},${text.slice(1)}`;
      if (text.startsWith('{"type":"state"') || text.startsWith('{"type":"delta"')) this.keep(text);
      this.deliver(wrapped);
    });
    socket.on('unexpected-response', (_request, response) => {
      this.lost(`it answered HTTP ${response.statusCode} to the live socket`);
      socket.terminate();
    });
    socket.on('error', (error) => this.lost(error.message));
    socket.on('close', () => this.lost('its live socket closed'));
  }

  /** A `state` replaces what is kept, a `delta` is merged into it (a delta before any state is dropped). */
  private keep(text: string): void {
    try {
      const message = JSON.parse(text) as { type: string; state?: unknown };
      const state = message.state;
      if (typeof state !== 'object' || state === null || Array.isArray(state)) return;
      // Kept without a prototype: a field named __proto__ is then only a field.
      if (message.type === 'state') this.state = Object.assign(Object.create(null), state);
      else if (this.state !== null) Object.assign(this.state, state);
    } catch {
      // Not JSON: forwarded as it came, nothing kept.
    }
  }

  /** The member's last known state as a `state` message, or null before the first. */
  get lastState(): string | null {
    return this.state === null
      ? null
      : JSON.stringify({ member: this.member.id, type: 'state', state: this.state });
  }

  private lost(reason: string): void {
    if (this.socket === null) return;
    this.socket.removeAllListeners();
    this.socket.on('error', () => {});
    this.socket.terminate();
    this.socket = null;
    this.state = null;
    this.down = reason;
    this.deliver(JSON.stringify({ member: this.member.id, type: 'down', reason }));
    if (this.closed) return;
    const [delay, next] = backoffDelay(this.attempt++, REDIAL_BASE_MS, REDIAL_MAX_MS, this.random);
    this.random = next;
    this.redial = setTimeout(() => {
      this.redial = null;
      this.open();
    }, delay);
  }

  /** The actors this member's pages show: told to the member now and whenever its socket opens again. */
  watch(actors: readonly string[]): void {
    if (actors.join('\n') === this.watched.join('\n')) return;
    this.watched = actors;
    if (this.socket?.readyState === WebSocket.OPEN)
      this.socket.send(JSON.stringify({ type: 'watch', actors }));
  }

  close(): void {
    this.closed = true;
    if (this.redial) clearTimeout(this.redial);
    this.socket?.removeAllListeners();
    this.socket?.on('error', () => {});
    this.socket?.terminate();
    this.socket = null;
  }
}

export class InspectorServer {
  private readonly server: Server;
  private readonly pages = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  private links: MemberLink[] = [];
  /** The actors each page shows. */
  private readonly watches = new Map<WebSocket, readonly WatchedActor[]>();

  private constructor(private readonly options: InspectorOptions) {
    this.server = createServer((request, response) => {
      this.serve(request, response).catch((error) => sendError(response, error));
    });
    this.server.on('upgrade', (request, socket, head) => this.upgrade(request, socket as Socket, head));
    this.server.on('clientError', (_error, socket) => socket.destroy());
    this.pages.on('connection', (page) => this.attach(page));
  }

  static async start(options: InspectorOptions): Promise<InspectorServer> {
    const inspector = new InspectorServer(options);
    await new Promise<void>((resolve, reject) => {
      inspector.server.once('error', reject);
      inspector.server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
    });
    return inspector;
  }

  /** The page's address. */
  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/`;
  }

  async close(): Promise<void> {
    for (const link of this.links) link.close();
    this.links = [];
    for (const page of this.pages.clients) page.terminate();
    this.pages.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private member(idText: string): InspectedEndpoint {
    const member = this.options.members.find((m) => String(m.id) === idText);
    if (!member)
      throw new HttpError(
        404,
        `no member ${idText} (members: ${this.options.members.map((m) => m.id).join(', ') || 'none with an admin HTTP port'})`,
      );
    return member;
  }

  /** GET a member's admin API; a member that does not answer is a 502 naming it and why. */
  private async fetchMember(member: InspectedEndpoint, path: string): Promise<Response> {
    const headers = this.options.token ? { authorization: `Bearer ${this.options.token}` } : undefined;
    try {
      return await fetch(`${member.url}${path}`, { headers, signal: AbortSignal.timeout(MEMBER_TIMEOUT_MS) });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new HttpError(502, `member ${member.id} (${member.url}) is down: ${why}`);
    }
  }

  private async memberStatus(member: InspectedEndpoint) {
    try {
      const response = await this.fetchMember(member, '/state');
      if (!response.ok) {
        const body = (await response.json().catch(() => ({}))) as { error?: string };
        return { ...member, up: false, reason: body.error ?? `HTTP ${response.status}` };
      }
      const state = (await response.json()) as { role?: string; term?: number; leaderId?: number | null };
      return {
        ...member,
        up: true,
        reason: null,
        role: state.role,
        term: state.term,
        leaderId: state.leaderId,
      };
    } catch (error) {
      return { ...member, up: false, reason: (error as Error).message };
    }
  }

  private async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method !== 'GET')
      throw new HttpError(405, `${request.method} is not served here: every route is GET`);
    const url = requestUrl(request);
    const path = url.pathname;
    if (path === '/api/members')
      return sendJson(response, 200, {
        members: await Promise.all(this.options.members.map((m) => this.memberStatus(m))),
      });
    const proxied = /^\/api\/member\/([^/]+)(\/.*)$/.exec(path);
    if (proxied) {
      const member = this.member(pathSegment(proxied[1]));
      const upstream = await this.fetchMember(member, `${proxied[2]}${url.search}`);
      const body = Buffer.from(await upstream.arrayBuffer());
      response.writeHead(upstream.status, {
        'content-type': upstream.headers.get('content-type') ?? 'application/octet-stream',
        'cache-control': 'no-store',
      });
      response.end(body);
      return;
    }
    if (path.startsWith('/api/'))
      throw new HttpError(404, `no API route ${path}: try /api/members or /api/member/ID/state`);
    return this.serveAsset(path === '/' ? '/index.html' : path.replace(/^\/assets\//, '/'), response);
  }

  private async serveAsset(path: string, response: ServerResponse): Promise<void> {
    const file = normalize(join(PAGE_DIR, pathSegment(path)));
    if (!file.startsWith(PAGE_DIR + sep)) throw new HttpError(404, `no asset ${path}`);
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      throw new HttpError(404, `no asset ${path}`);
    }
    response.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
    });
    response.end(body);
  }

  private upgrade(request: IncomingMessage, socket: Socket, head: Buffer): void {
    let path = '';
    try {
      path = requestUrl(request).pathname;
    } catch {}
    if (path !== '/api/live') {
      socket.end(
        `HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${JSON.stringify({ error: `no WebSocket at ${path}: connect to /api/live` })}`,
      );
      return;
    }
    this.pages.handleUpgrade(request, socket, head, (page) => this.pages.emit('connection', page, request));
  }

  /** A page attached: open the members' sockets if none was, and give it what is known so far. */
  private attach(page: WebSocket): void {
    page.on('error', () => page.terminate());
    page.on('message', (data, isBinary) => {
      try {
        this.onWatch(page, isBinary ? null : String(data));
      } catch {
        // A watch that could not be read changes nothing.
      }
    });
    page.on('close', () => {
      if (this.watches.delete(page)) this.rewatch();
      if (this.pages.clients.size > 0) return;
      // Nobody is watching: the members' sockets close, so members push nothing.
      for (const link of this.links) link.close();
      this.links = [];
    });
    if (this.links.length === 0) {
      this.links = this.options.members.map(
        (m) => new MemberLink(m, this.options.token, (text) => this.broadcast(text)),
      );
      this.rewatch();
      for (const link of this.links) link.open();
      return;
    }
    for (const link of this.links) {
      if (link.lastState) page.send(link.lastState);
      else if (link.down)
        page.send(JSON.stringify({ member: link.member.id, type: 'down', reason: link.down }));
    }
  }

  /** A page's watch (watch.ts): refused with the reason, or it replaces what the page watched. */
  private onWatch(page: WebSocket, text: string | null): void {
    const ids = new Set(this.options.members.map((m) => m.id));
    const watch =
      text === null
        ? { error: 'send text: a watch is JSON' }
        : parseWatch(
            text,
            z.object({
              member: z
                .number()
                .refine((id) => ids.has(id), `a watched actor names a member of ${[...ids].join(', ')}`),
              address: watchedAddress,
            }),
          );
    if ('error' in watch) {
      if (page.readyState === WebSocket.OPEN)
        page.send(JSON.stringify({ type: 'error', error: watch.error }));
      return;
    }
    this.watches.set(page, watch.value);
    this.rewatch();
  }

  /** Each member is told the actors its pages show, all pages together (as many as a member takes). */
  private rewatch(): void {
    const all = [...this.watches.values()].flat();
    for (const link of this.links) {
      const addresses = new Set(all.filter((w) => w.member === link.member.id).map((w) => w.address));
      link.watch([...addresses].sort().slice(0, MAX_WATCHED_ACTORS));
    }
  }

  private broadcast(text: string): void {
    for (const page of this.pages.clients)
      if (page.readyState === WebSocket.OPEN && page.bufferedAmount < 4 * 1024 * 1024) page.send(text);
  }
}
