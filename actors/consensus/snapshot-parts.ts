// A snapshot image as the consensus module carries it (SnapshotImage.data): the msgpack of two parts, the
// module's own (the committed session table) and the hosted services'. Peers send images whole
// (INSTALL_SNAPSHOT), so both sides of the wire and the store read and write them here, and only here.

import { pack, unpack } from 'msgpackr';
import type { SessionManagerSnapshot } from '../sessions/session-types.ts';

export interface SnapshotParts {
  /** The consensus module's part: the msgpack of its SessionManagerSnapshot. */
  readonly module: Uint8Array | null;
  /** The services' part (opaque here). */
  readonly service: Uint8Array | null;
}

/** The image data of both parts. */
export const encodeSnapshotParts = (parts: SnapshotParts): Uint8Array =>
  pack({ module: parts.module, service: parts.service });

/** The two parts of an image's data; a part that is missing or not bytes is null. */
export const snapshotParts = (data: Uint8Array): SnapshotParts => {
  const raw = unpack(data) as { module?: unknown; service?: unknown } | null;
  const part = (value: unknown): Uint8Array | null => (value instanceof Uint8Array ? value : null);
  return { module: part(raw?.module), service: part(raw?.service) };
};

/** The module part's bytes for a session table. */
export const encodeModulePart = (sessions: SessionManagerSnapshot): Uint8Array => pack(sessions);

/** The session table in a module part, or null when the image has none. */
export const decodeModulePart = (module: Uint8Array | null): SessionManagerSnapshot | null =>
  module === null ? null : (unpack(module) as SessionManagerSnapshot);
