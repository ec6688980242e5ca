// A member's admin HTTP listener: Prometheus metrics and the inspector's feed of this member (state, log,
// actors, time travel, machines) with live pushes over a WebSocket at /live. It binds `adminHttp.host`
// (loopback by default); with `adminHttp.token` set every request must carry it as a bearer token.
//
// The member calls `observe(inputs, effects)` for every batch its consensus module handles: the metrics
// count it, transition records are kept (the last 50), and while a socket is attached the feed marks what
// changed and pushes at most every PUSH_INTERVAL_MS — the transitions at once; of the state only the fields
// that changed since the last push (a `delta`; a new socket gets the whole `state` first); of the actors a
// socket watches (watch.ts: those its pages show), each one the applied entries addressed (coalesced: at
// most one push per actor per interval). With no socket attached nothing but the metrics and the transition
// records is done per batch, and the entries are read for actor addresses only while an actor is watched.
// At most MAX_LIVE_SOCKETS sockets are attached at once; one more is refused with a 503 saying so.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import { isActorEntry } from '../../actors/actor-runtime/protocol.ts';
import { decodeEntry } from '../../actors/actor-runtime/shard-input.ts';
import type { ModuleEffect, ModuleInput } from '../../actors/consensus/consensus-module.ts';
import type { ClusterConfig } from '../config.ts';
import { MemberMetrics } from '../metrics/member-metrics.ts';
import type { ServiceHost } from '../service-host.ts';
import { ActorViews } from './actor-view.ts';
import {
  authorized,
  HttpError,
  intParam,
  pathSegment,
  requestUrl,
  sendError,
  sendJson,
  toJson,
  UNAUTHORIZED,
} from './http.ts';
import { machineList, machineSvg } from './machines.ts';
import {
  type InspectedMember,
  KEPT_TRANSITIONS,
  logPage,
  MAX_LOG_ENTRIES,
  type MemberState,
  memberState,
  sessionStates,
  sessionTransitions,
  type TransitionRecord,
  transitionsOf,
} from './member-view.ts';
import { parseWatch, watchedAddress } from './watch.ts';

/** Live pushes of one kind go out at most this often (state, each actor). */
export const PUSH_INTERVAL_MS = 100;
/** Actors pushed per interval at most (the most recently addressed first). */
const MAX_ACTOR_PUSHES = 20;
/** A socket that has this much unsent is skipped until it drains (a slow page must not grow the member). */
const MAX_BUFFERED_BYTES = 1024 * 1024;
/** Live sockets attached at once at most (`chorus inspect` opens one per member, whatever its pages). */
export const MAX_LIVE_SOCKETS = 8;

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  503: 'Service Unavailable',
};

/** What the feed reads of the member (runtime/member.ts). */
export interface FeedMember extends InspectedMember {
  readonly config: ClusterConfig;
  readonly service: ServiceHost;
  readonly log: Logger;
}

export class MemberFeed {
  readonly metrics: MemberMetrics;
  private readonly actors: ActorViews;
  private readonly server: Server;
  private readonly sockets = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  private readonly transitions: TransitionRecord[] = [];
  private readonly token: string | undefined;
  // While watched:
  private dirty = false;
  private sessionCause: string | null = null;
  private sessionsSeen = new Map<number, string>();
  private readonly actorsDue = new Set<string>();
  /** The actors each socket watches, and their union: only these are pushed. */
  private readonly watching = new Map<WebSocket, readonly string[]>();
  private watchedActors: ReadonlySet<string> = new Set();
  private timer: NodeJS.Timeout | null = null;
  private pushing = false;
  /** Faults already logged (see failed). */
  private readonly faults = new Set<string>();
  /** Each field of the state as last pushed, as JSON (sessions without their activity times): see delta. */
  private pushedFields = new Map<string, string>();

  constructor(
    private readonly member: FeedMember,
    private readonly port: number,
  ) {
    this.token = member.config.adminHttp.token;
    this.actors = new ActorViews(member.service, member.store);
    this.metrics = new MemberMetrics({
      ...this.sourceOf(member),
      shardQueueDepth: () => this.actors.queueDepth(),
    });
    this.server = createServer((request, response) => {
      this.serve(request, response).catch((error) => sendError(response, error));
    });
    this.server.on('upgrade', (request, socket, head) => this.upgrade(request, socket as Socket, head));
    this.server.on('clientError', (_error, socket) => socket.destroy());
    // A request must arrive whole within the handshake limit (slowloris), as on the member's other ports.
    const { handshakeTimeoutMs, idleTimeoutMs } = member.config.limits;
    this.server.headersTimeout = handshakeTimeoutMs;
    this.server.requestTimeout = handshakeTimeoutMs;
    this.server.keepAliveTimeout = Math.min(idleTimeoutMs, 5_000);
    this.sockets.on('connection', (socket) => this.attach(socket));
  }

  /** The member's parts, read through it each time (its module is replaced when it rejoins). */
  private sourceOf(member: FeedMember): InspectedMember {
    return {
      get memberId() {
        return member.memberId;
      },
      get module() {
        return member.module;
      },
      get store() {
        return member.store;
      },
    };
  }

  async start(): Promise<void> {
    const host = this.member.config.adminHttp.host;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.member.log.info(
      { host, port: this.port },
      `admin HTTP listening on ${host}:${this.port} (metrics, inspector feed)`,
    );
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const socket of this.sockets.clients) socket.terminate();
    this.sockets.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  get watched(): boolean {
    return this.sockets.clients.size > 0;
  }

  /** One batch the consensus module handled. */
  observe(inputs: readonly ModuleInput[], effects: readonly ModuleEffect[]): void {
    try {
      this.observeBatch(inputs, effects);
    } catch (error) {
      // The feed only watches: a fault in it is reported, never carried into the member's own work.
      this.failed('observing a batch', error);
    }
  }

  private observeBatch(inputs: readonly ModuleInput[], effects: readonly ModuleEffect[]): void {
    this.metrics.observe(inputs, effects);
    const watched = this.watched;
    const { records, sessionCause } = transitionsOf(inputs, effects, Date.now(), watched);
    if (records.length > 0) this.keep(records);
    if (!watched) return;
    if (sessionCause !== null) this.sessionCause ??= sessionCause;
    if (this.watchedActors.size > 0)
      for (const effect of effects)
        if (effect.type === 'APPLY')
          for (const entry of effect.entries) {
            if (!isActorEntry(entry.kind)) continue;
            const body = decodeEntry(entry);
            if (Array.isArray(body) && typeof body[0] === 'string' && this.watchedActors.has(body[0])) {
              this.actorsDue.delete(body[0]);
              this.actorsDue.add(body[0]);
            }
          }
    this.dirty = true;
    if (records.length > 0) {
      for (const record of records) this.broadcast({ type: 'transition', ...record });
      this.schedule(0);
    } else this.schedule(PUSH_INTERVAL_MS);
  }

  private keep(records: readonly TransitionRecord[]): void {
    this.transitions.push(...records);
    if (this.transitions.length > KEPT_TRANSITIONS)
      this.transitions.splice(0, this.transitions.length - KEPT_TRANSITIONS);
  }

  private schedule(delayMs: number): void {
    if (this.timer !== null) {
      if (delayMs > 0) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.push().catch((error) => this.failed('a live push', error));
    }, delayMs);
  }

  /** Logged once per kind of fault: the member goes on, the feed may show less. */
  private failed(what: string, error: unknown): void {
    if (this.faults.has(what)) return;
    this.faults.add(what);
    this.member.log.warn({ err: error }, `inspector feed: ${what} failed: ${(error as Error).message}`);
  }

  /** Push what changed since the last push: session transitions, the state, the actors addressed. */
  private async push(): Promise<void> {
    if (this.pushing || !this.watched) return;
    this.pushing = true;
    try {
      if (this.sessionCause !== null) {
        const now = sessionStates(this.member.module);
        const records = sessionTransitions(this.sessionsSeen, now, this.sessionCause, Date.now());
        this.sessionsSeen = now;
        this.sessionCause = null;
        this.keep(records);
        for (const record of records) this.broadcast({ type: 'transition', ...record });
      }
      if (this.dirty) {
        this.dirty = false;
        const delta = this.delta(this.state());
        if (delta !== null) this.broadcast({ type: 'delta', state: delta });
      }
      if (this.actorsDue.size > 0) {
        const due = [...this.actorsDue].slice(-MAX_ACTOR_PUSHES);
        this.actorsDue.clear();
        for (const address of due) {
          const view = await this.actors.actorState(address).catch(() => null);
          if (view) this.broadcast({ type: 'actor', address, ...view });
        }
      }
    } finally {
      this.pushing = false;
    }
    if (this.dirty || this.actorsDue.size > 0 || this.sessionCause !== null) this.schedule(PUSH_INTERVAL_MS);
  }

  private state() {
    return memberState(this.member, this.transitions, (connection) => this.metrics.inFlightOf(connection));
  }

  /**
   * The fields of `state` that changed since the last push (null when none did), remembered as pushed. The
   * transitions are left out (each went out as a `transition` message); a session's time since its last
   * activity alone is no change.
   */
  private delta(state: MemberState): Partial<MemberState> | null {
    const delta: Record<string, unknown> = {};
    let changed = false;
    for (const [key, value] of Object.entries(state)) {
      if (key === 'transitions') continue;
      const print = toJson(
        key === 'sessions' ? state.sessions.map((s) => [s.id, s.state, s.connected, s.inFlight]) : value,
      );
      if (this.pushedFields.get(key) === print) continue;
      this.pushedFields.set(key, print);
      delta[key] = value;
      changed = true;
    }
    return changed ? (delta as Partial<MemberState>) : null;
  }

  private broadcast(message: object): void {
    const text = toJson(message);
    for (const socket of this.sockets.clients)
      if (socket.readyState === socket.OPEN && socket.bufferedAmount < MAX_BUFFERED_BYTES) socket.send(text);
  }

  private attach(socket: WebSocket): void {
    socket.on('error', () => socket.terminate());
    // What a socket sends only says which actors to push (watch.ts); it never reaches the module.
    socket.on('message', (data, isBinary) => {
      try {
        this.onWatch(socket, isBinary ? null : String(data));
      } catch (error) {
        this.failed('reading a watch', error);
      }
    });
    socket.on('close', () => {
      if (this.watching.delete(socket)) this.rewatch();
    });
    try {
      if (this.sockets.clients.size === 1) this.sessionsSeen = sessionStates(this.member.module);
      // Every socket gets the whole state, so the deltas that follow start from the same one on each.
      const state = this.state();
      this.pushedFields.clear();
      this.delta(state);
      this.broadcast({ type: 'state', state });
    } catch (error) {
      this.failed('a new live socket', error);
      socket.close(1011, 'the member could not read its state');
    }
  }

  /** A socket's watch: refused with the reason (sent back), or its actors replace what it watched. */
  private onWatch(socket: WebSocket, text: string | null): void {
    const watch = text === null ? { error: 'send text: a watch is JSON' } : parseWatch(text, watchedAddress);
    if ('error' in watch) {
      if (socket.readyState === socket.OPEN) socket.send(toJson({ type: 'error', error: watch.error }));
      return;
    }
    const before = this.watchedActors;
    this.watching.set(socket, watch.value);
    this.rewatch();
    // An actor newly watched is pushed at once, as it stands.
    const added = watch.value.filter((address) => !before.has(address));
    if (added.length === 0) return;
    for (const address of added) this.actorsDue.add(address);
    this.schedule(0);
  }

  private rewatch(): void {
    this.watchedActors = new Set([...this.watching.values()].flat());
    for (const address of this.actorsDue)
      if (!this.watchedActors.has(address)) this.actorsDue.delete(address);
  }

  private upgrade(request: IncomingMessage, socket: Socket, head: Buffer): void {
    const refuse = (status: number, message: string) => {
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${JSON.stringify({ error: message })}`,
      );
    };
    let path: string;
    try {
      path = requestUrl(request).pathname;
    } catch (error) {
      refuse(400, (error as Error).message);
      return;
    }
    if (!authorized(request, this.token)) refuse(401, UNAUTHORIZED);
    else if (path !== '/live') refuse(404, `no WebSocket at ${path}: connect to /live`);
    else if (this.sockets.clients.size >= MAX_LIVE_SOCKETS)
      refuse(
        503,
        `${MAX_LIVE_SOCKETS} live sockets are attached to this member already, the most it serves: close one (chorus inspect needs only one per member)`,
      );
    else
      this.sockets.handleUpgrade(request, socket, head, (ws) => this.sockets.emit('connection', ws, request));
  }

  private async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (!authorized(request, this.token)) throw new HttpError(401, UNAUTHORIZED);
    if (request.method !== 'GET')
      throw new HttpError(405, `${request.method} is not served here: every route is GET`);
    const url = requestUrl(request);
    const path = url.pathname;
    const { module } = this.member;
    if (path === '/metrics') {
      const text = await this.metrics.text();
      response.writeHead(200, { 'content-type': this.metrics.contentType, 'cache-control': 'no-store' });
      response.end(text);
      return;
    }
    if (path === '/state') return sendJson(response, 200, this.state());
    if (path === '/log') {
      const from = url.searchParams.has('from') ? intParam(url, 'from', 1, 1, Number.MAX_SAFE_INTEGER) : null;
      const limit = intParam(url, 'limit', 100, 1, MAX_LOG_ENTRIES);
      return sendJson(response, 200, logPage(this.member, from, limit));
    }
    if (path === '/actors')
      return sendJson(response, 200, await this.actors.list(url.searchParams.get('q') ?? ''));
    const actor = /^\/actors\/(.+?)(?:\/at\/([^/]*))?$/.exec(path);
    if (actor) {
      const address = pathSegment(actor[1]);
      const commit = module.node.commitIndex;
      if (actor[2] === undefined) return sendJson(response, 200, await this.actors.actor(address, commit));
      const index = Number(actor[2]);
      if (!Number.isSafeInteger(index) || index < 0)
        throw new HttpError(400, `the index must be a whole number, got "${pathSegment(actor[2])}"`);
      return sendJson(response, 200, await this.actors.actorAt(address, index, commit));
    }
    if (path === '/machines') return sendJson(response, 200, { machines: machineList(this.actors.services) });
    const svg = /^\/machines\/([^/]+)\.svg$/.exec(path);
    if (svg) {
      const text = await machineSvg(pathSegment(svg[1]), this.actors.services);
      response.writeHead(200, { 'content-type': 'image/svg+xml', 'cache-control': 'no-store' });
      response.end(text);
      return;
    }
    throw new HttpError(
      404,
      `no route ${path}: try /state, /log, /actors, /machines, /metrics or the WebSocket /live`,
    );
  }
}
