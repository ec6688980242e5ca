// What the member's admin HTTP listener and `chorus inspect` share: JSON answers, the one error shape
// (`{ error }` with a 4xx/5xx status), the bearer-token check, and JSON that survives bytes and bigints.

import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A refusal with its HTTP status: the handler answers `{ error: message }` and goes on serving. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** JSON for values the services may hold: bytes as base64, bigints as strings, Maps as objects. */
export const toJson = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => {
    if (v instanceof Uint8Array) return { base64: Buffer.from(v).toString('base64') };
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Map) return Object.fromEntries(v);
    if (v instanceof Set) return [...v];
    return v;
  });

export const sendJson = (response: ServerResponse, status: number, body: unknown): void => {
  const text = toJson(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
};

export const sendError = (response: ServerResponse, error: unknown): void => {
  const status = error instanceof HttpError ? error.status : 500;
  const message = error instanceof Error ? error.message : String(error);
  if (response.headersSent) {
    response.destroy();
    return;
  }
  sendJson(response, status, { error: message });
};

/**
 * Whether a request may be served: always without a token (a loopback listener); with one, only when
 * `Authorization: Bearer <token>` carries it (compared in constant time).
 */
export const authorized = (request: IncomingMessage, token: string | undefined): boolean => {
  if (token === undefined) return true;
  const header = request.headers.authorization ?? '';
  const match = /^Bearer\s+(.+)$/i.exec(header);
  if (!match) return false;
  const given = Buffer.from(match[1].trim());
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
};

export const UNAUTHORIZED =
  'this admin listener is not on loopback: send Authorization: Bearer <token> (adminHttp.token in the configuration)';

/** A whole number query parameter in [min, max], `fallback` when absent; otherwise a 400 naming it. */
export const intParam = (url: URL, name: string, fallback: number, min: number, max: number): number => {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new HttpError(400, `${name} must be a whole number in ${min}..${max}, got "${raw}"`);
  return n;
};

/** The request's URL (path and query); one that does not parse is a 400. */
export const requestUrl = (request: IncomingMessage): URL => {
  try {
    return new URL(request.url ?? '/', 'http://admin.invalid');
  } catch {
    throw new HttpError(400, `malformed request URL ${JSON.stringify(request.url)}`);
  }
};

/** A path segment, URL-decoded; a malformed escape is a 400, not an exception. */
export const pathSegment = (segment: string): string => {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, `malformed path segment "${segment}"`);
  }
};
