import { expect } from 'chai';
import fc from 'fast-check';
import {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  type Frame,
  FrameDecoder,
  HEADER_BYTES,
  PROTOCOL_VERSION,
} from '../../../runtime/wire/frame-codec.ts';
import { checkProperty } from '../../support/property.ts';

// Bodies as the protocol uses them: plain msgpack values (no undefined, no NaN identity issues).
const body = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.integer(),
    fc.double({ noNaN: true }).map((d) => (Object.is(d, -0) ? 0 : d)), // msgpack has no -0 integer
    fc.string(),
    fc.boolean(),
    fc.constant(null),
    fc.uint8Array({ maxLength: 64 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), tie('value'), { maxKeys: 4 }),
  ),
})).value;

const frameArb = fc.record({ kind: fc.integer({ min: 0, max: 0xffff }), body });

/** Normalise decoded values so Buffers compare equal to the Uint8Arrays that were encoded. */
const plain = (value: unknown): unknown => {
  if (value instanceof Uint8Array) return Array.from(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
};

const splitAt = (bytes: Buffer, cuts: number[]): Buffer[] => {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    parts.push(bytes.subarray(last, p));
    last = p;
  }
  parts.push(bytes.subarray(last));
  return parts;
};

const decodeAll = (decoder: FrameDecoder, parts: Buffer[]) => {
  const frames: Frame[] = [];
  for (const part of parts) {
    const result = decoder.push(part);
    frames.push(...result.frames);
    if (result.error) return { frames, error: result.error };
  }
  return { frames, error: decoder.error ?? undefined };
};

describe('wire codec', () => {
  it('encodes a frame as length, version, kind and a msgpack body', () => {
    const frame = encodeFrame(7, { hello: 'world' });
    expect(frame.readUInt32LE(0)).to.equal(frame.length - 4);
    expect(frame.readUInt16LE(4)).to.equal(PROTOCOL_VERSION);
    expect(frame.readUInt16LE(6)).to.equal(7);
    const { frames } = new FrameDecoder().push(frame);
    expect(frames).to.deep.equal([{ version: PROTOCOL_VERSION, kind: 7, body: { hello: 'world' } }]);
  });

  it('keeps earlier encoded frames intact while encoding more', () => {
    const first = encodeFrame(1, { n: 1 });
    const copy = Buffer.from(first);
    for (let i = 0; i < 1000; i++) encodeFrame(2, { n: i, pad: 'x'.repeat(100) });
    expect(first.equals(copy)).to.equal(true);
  });

  it('gives back the same frames for any split of any valid stream', () => {
    checkProperty(
      fc.property(
        fc.array(frameArb, { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (input, cuts) => {
          const stream = Buffer.concat(input.map((f) => Buffer.from(encodeFrame(f.kind, f.body))));
          const { frames, error } = decodeAll(new FrameDecoder(), splitAt(stream, cuts));
          expect(error).to.equal(undefined);
          expect(frames.map((f) => ({ kind: f.kind, body: plain(f.body) }))).to.deep.equal(
            input.map((f) => ({ kind: f.kind, body: plain(f.body) })),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('decodes a stream fed one byte at a time', () => {
    const input = [
      { kind: 1, body: { term: 3, index: 41, entries: [new Uint8Array([1, 2, 3])] } },
      { kind: 2, body: 'x'.repeat(70_000) },
      { kind: 3, body: [] },
    ];
    const stream = Buffer.concat(input.map((f) => Buffer.from(encodeFrame(f.kind, f.body))));
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    for (let i = 0; i < stream.length; i++) frames.push(...decoder.push(stream.subarray(i, i + 1)).frames);
    expect(frames.map((f) => f.kind)).to.deep.equal([1, 2, 3]);
    expect(frames[1].body).to.equal('x'.repeat(70_000));
    expect(decoder.bufferedBytes).to.equal(0);
  });

  it('never lets random bytes escape as an exception', () => {
    checkProperty(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
        for (const chunk of chunks) {
          const result = decoder.push(chunk);
          if (result.error) expect(result.error.name).to.equal('FrameError');
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws on truncated or corrupted frames, and reports garbage as a typed error', () => {
    checkProperty(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 4 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        (input, cutAt, flipAt, flip) => {
          const stream = Buffer.concat(input.map((f) => Buffer.from(encodeFrame(f.kind, f.body))));
          const truncated = stream.subarray(0, cutAt % stream.length);
          const r1 = new FrameDecoder().push(truncated);
          expect(r1.frames.length).to.be.lessThan(input.length);
          const corrupted = Buffer.from(stream);
          corrupted[flipAt % corrupted.length] ^= flip;
          const r2 = new FrameDecoder({ maxFrameBytes: 1 << 20 }).push(corrupted);
          if (r2.error)
            expect(['FRAME_TOO_LARGE', 'FRAME_TOO_SHORT', 'UNSUPPORTED_VERSION', 'BAD_BODY']).to.include(
              r2.error.code,
            );
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses a frame over the configured maximum as soon as its length is read', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 128 });
    const small = encodeFrame(1, 'ok');
    const big = encodeFrame(1, 'y'.repeat(500));
    const result = decoder.push(Buffer.concat([small, big.subarray(0, 4)]));
    expect(result.frames).to.have.length(1);
    expect(result.error?.code).to.equal('FRAME_TOO_LARGE');
    expect(result.error?.message).to.match(/exceeds the maximum of 128 bytes/);
    // A failed decoder stays failed: the connection must be closed.
    expect(decoder.push(encodeFrame(1, 'later')).frames).to.have.length(0);
  });

  it('refuses a frame shorter than its header, naming the header as it is (8 bytes, length field included)', () => {
    const short = Buffer.alloc(4);
    short.writeUInt32LE(2, 0); // a length of 2: less than the version and kind that must follow
    const result = new FrameDecoder().push(short);
    expect(result.error?.code).to.equal('FRAME_TOO_SHORT');
    expect(result.error?.message).to.equal(
      `frame of 6 bytes is shorter than the ${HEADER_BYTES}-byte header (its length field says 2; at least 4 must follow it: version and kind)`,
    );
  });

  it('refuses oversize frames of any size above the limit and accepts all below it', () => {
    checkProperty(
      fc.property(
        fc.integer({ min: 0, max: 4000 }),
        fc.integer({ min: HEADER_BYTES + 8, max: 2000 }),
        (len, max) => {
          const frame = encodeFrame(9, new Uint8Array(len));
          const result = new FrameDecoder({ maxFrameBytes: max }).push(frame);
          if (frame.length > max) expect(result.error?.code).to.equal('FRAME_TOO_LARGE');
          else expect(result.frames).to.have.length(1);
        },
      ),
      { numRuns: 300 },
    );
    expect(DEFAULT_MAX_FRAME_BYTES).to.be.greaterThan(1024 * 1024 - 1);
  });

  it('O4: refuses a peer speaking an unsupported protocol version, naming both versions', () => {
    const future = encodeFrame(1, { hello: 1 }, PROTOCOL_VERSION + 1);
    const result = new FrameDecoder().push(future.subarray(0, 6));
    expect(result.error?.code).to.equal('UNSUPPORTED_VERSION');
    expect(result.error?.message).to.include(`protocol version ${PROTOCOL_VERSION + 1} is not supported`);
  });

  it('reports a body that is not msgpack as BAD_BODY and keeps the frames before it', () => {
    const good = encodeFrame(1, 'fine');
    const bad = Buffer.alloc(HEADER_BYTES + 2);
    bad.writeUInt32LE(bad.length - 4, 0);
    bad.writeUInt16LE(PROTOCOL_VERSION, 4);
    bad.writeUInt16LE(5, 6);
    bad[8] = 0xc1; // never used in msgpack
    const result = new FrameDecoder().push(Buffer.concat([good, bad]));
    expect(result.frames.map((f) => f.body)).to.deep.equal(['fine']);
    expect(result.error?.code).to.equal('BAD_BODY');
    expect(result.error?.message).to.include('kind 5');
  });
});
