// Helpers for the inspector's server specs: a Prometheus text parser strict enough to fail on a malformed
// exposition, JSON over HTTP, and a WebSocket that records what it is sent and waits for a message.

import { expect } from 'chai';
import { WebSocket } from 'ws';

/** JSON read from the API: its shape is what the assertions check. */
// biome-ignore lint/suspicious/noExplicitAny: the specs check each field they read
export type Json = any;

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)( -?\d+)?$/;
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"$/;
const SUFFIXES = ['_bucket', '_sum', '_count', '_total', '_created'];

/**
 * Parse the Prometheus text exposition (version 0.0.4): every line a HELP, a TYPE or a sample whose metric
 * family has a TYPE. Throws naming the first line that is none of these.
 */
export const parsePrometheus = (text: string): Sample[] => {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (comment) {
      if (comment[1] === 'TYPE') {
        if (!/^(counter|gauge|histogram|summary|untyped)$/.test(comment[3]))
          throw new Error(`unknown metric type in: ${line}`);
        types.set(comment[2], comment[3]);
      }
      continue;
    }
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const name = match[1];
    const family = types.has(name)
      ? name
      : SUFFIXES.map((s) => (name.endsWith(s) ? name.slice(0, -s.length) : '')).find((f) => types.has(f));
    if (!family) throw new Error(`sample ${name} has no # TYPE line`);
    const labels: Record<string, string> = {};
    if (match[3])
      for (const pair of match[3].split(/,(?=[a-zA-Z_][a-zA-Z0-9_]*=")/)) {
        const label = LABEL.exec(pair);
        if (!label) throw new Error(`malformed label ${pair} in: ${line}`);
        labels[label[1]] = label[2];
      }
    samples.push({ name, labels, value: Number(match[4].replace('+Inf', 'Infinity')) });
  }
  return samples;
};

/** The value of the one sample named so (with these labels), or a failed expectation. */
export const sampleValue = (
  samples: readonly Sample[],
  name: string,
  labels: Record<string, string> = {},
): number => {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  expect(found, `samples named ${name} ${JSON.stringify(labels)}`).to.have.length(1);
  return found[0].value;
};

export const getJson = async (
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Json }> => {
  const response = await fetch(url, { headers });
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(
      `${url} answered ${response.status} with something other than JSON: ${text.slice(0, 200)}`,
    );
  }
  return { status: response.status, body };
};

/** A refused WebSocket upgrade: its HTTP status and body. */
export interface Refusal {
  readonly status: number;
  readonly body: string;
}

/** A WebSocket client that keeps every message (parsed) and can wait for one matching a test. */
export class RecordingSocket {
  readonly messages: Json[] = [];
  private waiters: { test: (m: Json) => boolean; resolve: (m: Json) => void }[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString());
      this.messages.push(message);
      this.waiters = this.waiters.filter((w) => {
        if (!w.test(message)) return true;
        w.resolve(message);
        return false;
      });
    });
  }

  static open(url: string, headers?: Record<string, string>): Promise<RecordingSocket> {
    const socket = new WebSocket(url, headers ? { headers } : {});
    const recording = new RecordingSocket(socket);
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(recording));
      socket.once('error', reject);
      socket.once('unexpected-response', (_request, response) =>
        reject(new Error(`HTTP ${response.statusCode}`)),
      );
    });
  }

  /** Open, or the status and body the server answered the upgrade with when it refused it. */
  static attempt(url: string): Promise<RecordingSocket | Refusal> {
    const socket = new WebSocket(url);
    const recording = new RecordingSocket(socket);
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(recording));
      socket.on('error', reject);
      socket.once('unexpected-response', (_request, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, body });
          socket.terminate();
        });
      });
    });
  }

  /** The first message (already received or to come) matching `test`; rejects naming `what` after `ms`. */
  next(test: (m: Json) => boolean, what: string, ms: number): Promise<Json> {
    const seen = this.messages.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
      this.waiters.push({
        test,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  close(): void {
    this.socket.terminate();
  }
}

/**
 * A member's state as its live messages leave it: its last `state`, with every `delta` after it merged in
 * (`member` picks one member's messages on `chorus inspect`'s /api/live); null before its first state.
 */
export const liveState = (messages: readonly Json[], member?: number): Json | null => {
  let state: Json | null = null;
  for (const message of messages) {
    if (member !== undefined && message.member !== member) continue;
    if (message.type === 'state') state = { ...message.state };
    else if (message.type === 'delta' && state !== null) Object.assign(state, message.state);
  }
  return state;
};
