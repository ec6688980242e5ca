// The wire codec: length-prefixed msgpack frames with a versioned header.
//
//   offset 0  u32 LE  length of everything after this field (header rest + body)
//   offset 4  u16 LE  protocol version
//   offset 6  u16 LE  message kind
//   offset 8  ...     msgpack body
//
// Encoding writes the header into space msgpackr reserves in front of the body, so a frame is built
// in one buffer with no copy. Decoding is streaming: bytes may arrive in any split (one at a time,
// many frames in one chunk) and garbage becomes a typed `FrameError` for that connection, never a
// throw that escapes. After an error the decoder stays failed: the connection must be closed.

import { Packr, RESERVE_START_SPACE, Unpackr } from 'msgpackr';
import { DEFAULT_MAX_FRAME_BYTES } from './frame-limits.ts';

/** 2: APPEND carries its entries as one flat array (runtime/peer-network.ts), not one map per entry. */
export const PROTOCOL_VERSION = 2;
/** The oldest protocol version this build can still talk to. */
export const MIN_PROTOCOL_VERSION = 2;
export const LENGTH_FIELD_BYTES = 4;
export const HEADER_BYTES = 8;
export { DEFAULT_MAX_FRAME_BYTES };

export interface Frame {
  readonly version: number;
  readonly kind: number;
  readonly body: unknown;
}

export type FrameErrorCode = 'FRAME_TOO_LARGE' | 'FRAME_TOO_SHORT' | 'UNSUPPORTED_VERSION' | 'BAD_BODY';

/** A frame that cannot be accepted. The connection it came from should be closed with `message`. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly code: FrameErrorCode,
    message: string,
  ) {
    super(message);
  }
}

// Plain msgpack (no msgpackr record extension), so any msgpack implementation can speak the protocol.
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/**
 * Encode one frame. The returned buffer may be a view into a larger buffer that msgpackr owns: it stays
 * valid (later encodes write after it), but copy it before keeping it for long if memory matters.
 */
export const encodeFrame = (kind: number, body: unknown, version: number = PROTOCOL_VERSION): Buffer => {
  if (!Number.isInteger(kind) || kind < 0 || kind > 0xffff) {
    throw new RangeError(`encodeFrame: message kind must be an integer in 0..65535, got ${kind}`);
  }
  const frame = packr.pack(body, RESERVE_START_SPACE | HEADER_BYTES);
  frame.writeUInt32LE(frame.length - LENGTH_FIELD_BYTES, 0);
  frame.writeUInt16LE(version, 4);
  frame.writeUInt16LE(kind, 6);
  return frame;
};

export interface DecoderOptions {
  /** Largest frame (header + body) accepted; a larger declared length fails the connection. */
  readonly maxFrameBytes?: number;
  /** Versions accepted, inclusive. Defaults to this build's range. */
  readonly minVersion?: number;
  readonly maxVersion?: number;
}

export type DecodeResult = { readonly frames: Frame[]; readonly error?: FrameError };

export class FrameDecoder {
  private readonly maxFrameBytes: number;
  private readonly minVersion: number;
  private readonly maxVersion: number;
  /** A frame whose length is known but whose bytes have not all arrived: allocated once, filled in place. */
  private partial: Buffer | null = null;
  private partialFill = 0;
  /** Fewer bytes than a length field, carried to the next chunk. */
  private stub: Buffer | null = null;
  private failure: FrameError | null = null;

  constructor(options: DecoderOptions = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.minVersion = options.minVersion ?? MIN_PROTOCOL_VERSION;
    this.maxVersion = options.maxVersion ?? PROTOCOL_VERSION;
    if (!(this.maxFrameBytes >= HEADER_BYTES)) {
      throw new RangeError(`FrameDecoder: maxFrameBytes must be at least ${HEADER_BYTES}`);
    }
  }

  /** The error that failed this decoder, if any. */
  get error(): FrameError | null {
    return this.failure;
  }

  /** Bytes held for an incomplete frame. */
  get bufferedBytes(): number {
    return this.partial ? this.partialFill : (this.stub?.length ?? 0);
  }

  /**
   * Feed a chunk; returns every frame it completes. On bad input, returns the frames decoded before the
   * bad one plus the error; later calls return the same error and no frames.
   */
  push(chunk: Uint8Array): DecodeResult {
    if (this.failure) return { frames: [], error: this.failure };
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const frames: Frame[] = [];
    let offset = 0;

    if (this.partial) {
      // Each byte of a large frame is copied once, however finely it was split.
      const partial = this.partial;
      const take = Math.min(partial.length - this.partialFill, buf.length);
      buf.copy(partial, this.partialFill, 0, take);
      this.partialFill += take;
      offset = take;
      if (this.partialFill < partial.length) {
        const error = this.partialFill >= 6 ? this.checkVersion(partial, 0) : undefined;
        return error ? this.fail(frames, error) : { frames };
      }
      this.partial = null;
      const error = this.decodeOne(partial, 0, partial.length, frames);
      if (error) return this.fail(frames, error);
    } else if (this.stub) {
      buf = Buffer.concat([this.stub, buf]);
      this.stub = null;
    }

    while (buf.length - offset >= LENGTH_FIELD_BYTES) {
      const frameBytes = buf.readUInt32LE(offset) + LENGTH_FIELD_BYTES;
      const lengthError = this.checkLength(frameBytes);
      if (lengthError) return this.fail(frames, lengthError);
      // Check the version as soon as it is readable, so an incompatible peer is refused early.
      if (buf.length - offset >= 6) {
        const versionError = this.checkVersion(buf, offset);
        if (versionError) return this.fail(frames, versionError);
      }
      if (buf.length - offset < frameBytes) {
        this.partial = Buffer.allocUnsafe(frameBytes);
        this.partialFill = buf.copy(this.partial, 0, offset);
        return { frames };
      }
      const error = this.decodeOne(buf, offset, offset + frameBytes, frames);
      if (error) return this.fail(frames, error);
      offset += frameBytes;
    }
    if (offset < buf.length) this.stub = Buffer.from(buf.subarray(offset));
    return { frames };
  }

  private checkLength(frameBytes: number): FrameError | undefined {
    if (frameBytes > this.maxFrameBytes) {
      return new FrameError(
        'FRAME_TOO_LARGE',
        `frame of ${frameBytes} bytes exceeds the maximum of ${this.maxFrameBytes} bytes`,
      );
    }
    if (frameBytes < HEADER_BYTES) {
      return new FrameError(
        'FRAME_TOO_SHORT',
        `frame of ${frameBytes} bytes is shorter than the ${HEADER_BYTES}-byte header ` +
          `(its length field says ${frameBytes - LENGTH_FIELD_BYTES}; at least ${HEADER_BYTES - LENGTH_FIELD_BYTES} must follow it: version and kind)`,
      );
    }
    return undefined;
  }

  private checkVersion(buf: Buffer, offset: number): FrameError | undefined {
    const version = buf.readUInt16LE(offset + 4);
    if (version >= this.minVersion && version <= this.maxVersion) return undefined;
    return new FrameError(
      'UNSUPPORTED_VERSION',
      `protocol version ${version} is not supported (this build speaks ${this.minVersion}..${this.maxVersion})`,
    );
  }

  /** Decode the complete frame at buf[start, end) into `frames`; an error if its body is not msgpack. */
  private decodeOne(buf: Buffer, start: number, end: number, frames: Frame[]): FrameError | undefined {
    const versionError = this.checkVersion(buf, start);
    if (versionError) return versionError;
    const version = buf.readUInt16LE(start + 4);
    const kind = buf.readUInt16LE(start + 6);
    try {
      frames.push({ version, kind, body: unpackr.unpack(buf.subarray(start + HEADER_BYTES, end)) });
      return undefined;
    } catch (cause) {
      const detail = cause instanceof Error ? cause.message : String(cause);
      return new FrameError('BAD_BODY', `frame body of kind ${kind} is not valid msgpack: ${detail}`);
    }
  }

  private fail(frames: Frame[], error: FrameError): DecodeResult {
    this.failure = error;
    this.partial = null;
    this.stub = null;
    return { frames, error };
  }
}
