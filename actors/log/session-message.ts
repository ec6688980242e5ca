// The payload of a SESSION_MESSAGE log entry: which client session sent it, its correlation id, the
// lowest correlation id the client still awaited when it sent it (everything below can be forgotten by
// the services' de-duplication tables: actors/sessions/command-dedup.ts), and the service's own bytes.
// A fixed 24-byte header (three little-endian float64s, so ids up to 2^53 are exact) keeps the
// per-command cost to one copy.

/** Bytes before the service's own body. */
export const SESSION_MESSAGE_HEADER_BYTES = 24;
const HEADER_BYTES = SESSION_MESSAGE_HEADER_BYTES;

export interface SessionMessage {
  readonly sessionId: number;
  readonly correlationId: number;
  /** The lowest correlation id the client was still waiting for (≤ correlationId). */
  readonly lowestAwaited: number;
  readonly body: Uint8Array;
}

export const encodeSessionMessage = (
  sessionId: number,
  correlationId: number,
  lowestAwaited: number,
  body: Uint8Array,
): Uint8Array => {
  const out = new Uint8Array(HEADER_BYTES + body.length);
  const view = new DataView(out.buffer);
  view.setFloat64(0, sessionId, true);
  view.setFloat64(8, correlationId, true);
  view.setFloat64(16, lowestAwaited, true);
  out.set(body, HEADER_BYTES);
  return out;
};

export const decodeSessionMessage = (payload: Uint8Array): SessionMessage => {
  if (payload.length < HEADER_BYTES) {
    throw new RangeError(
      `session message payload is ${payload.length} bytes, shorter than its ${HEADER_BYTES}-byte header: ` +
        'encode it with encodeSessionMessage',
    );
  }
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return {
    sessionId: view.getFloat64(0, true),
    correlationId: view.getFloat64(8, true),
    lowestAwaited: view.getFloat64(16, true),
    body: payload.subarray(HEADER_BYTES),
  };
};
