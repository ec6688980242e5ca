// The payload of a SESSION_MESSAGE log entry: which client session sent it, its correlation id, and
// the service's own bytes. A fixed 16-byte header (two little-endian float64s, so ids up to 2^53 are
// exact) keeps the per-command cost to one copy.

const HEADER_BYTES = 16;

export interface SessionMessage {
  readonly sessionId: number;
  readonly correlationId: number;
  readonly body: Uint8Array;
}

export const encodeSessionMessage = (
  sessionId: number,
  correlationId: number,
  body: Uint8Array,
): Uint8Array => {
  const out = new Uint8Array(HEADER_BYTES + body.length);
  const view = new DataView(out.buffer);
  view.setFloat64(0, sessionId, true);
  view.setFloat64(8, correlationId, true);
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
    body: payload.subarray(HEADER_BYTES),
  };
};
