// Wire codec throughput: encode + decode of a typical mix of consensus and client messages, against the
// same framing with JSON.stringify/parse as the body encoding, measured in the same run.

import { Random } from '../machines/random.ts';
import { encodeFrame, FrameDecoder, HEADER_BYTES, PROTOCOL_VERSION } from '../runtime/wire/frame-codec.ts';
import type { BenchOptions, BenchResult } from './harness.ts';
import { opsPerSecond, round } from './harness.ts';

export const describe =
  'frames per second for encode+decode of a mix of consensus (append with 256-byte entries, ack, heartbeat, canvass) and client (command, reply) messages; baseline is the same length-prefixed framing with JSON bodies (binary as base64)';

type Message = { kind: number; body: unknown };

const typicalMessages = (random: Random): Message[] => {
  const payload = () => Uint8Array.from({ length: 256 }, () => random.int(0, 255));
  const messages: Message[] = [];
  for (let i = 0; i < 64; i++) {
    const index = 1000 + i * 8;
    messages.push({
      kind: 1, // append entries: a batch of 8 entries
      body: {
        type: 'APPEND',
        term: 7,
        leaderId: 0,
        prevIndex: index - 1,
        prevTerm: 7,
        commitIndex: index - 4,
        entries: Array.from({ length: 8 }, (_, k) => ({
          index: index + k,
          term: 7,
          timestamp: 1_700_000_000_000 + k,
          kind: 3,
          payload: payload(),
        })),
      },
    });
    messages.push({
      kind: 2,
      body: { type: 'APPEND_ACK', term: 7, from: 1, flushedIndex: index + 7, ok: true },
    });
    messages.push({ kind: 3, body: { type: 'HEARTBEAT', term: 7, leaderId: 0, commitIndex: index + 7 } });
    messages.push({
      kind: 4,
      body: { type: 'CANVASS', logTerm: 7, appendIndex: index, leadershipTerm: 7, from: 2 },
    });
    messages.push({
      kind: 10,
      body: { type: 'COMMAND', sessionId: 42, correlationId: 9000 + i, payload: payload() },
    });
    messages.push({
      kind: 11,
      body: { type: 'REPLY', sessionId: 42, correlationId: 9000 + i, ok: true, value: 'v'.repeat(32) },
    });
  }
  return messages;
};

// The baseline: identical header and framing, JSON body, binary payloads as base64 strings (the usual
// JSON answer; decoding leaves them as strings, which favours the baseline).
const encodeJson = (kind: number, body: unknown): Buffer => {
  const json = Buffer.from(
    JSON.stringify(body, (_, v) =>
      v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : v,
    ),
  );
  const frame = Buffer.allocUnsafe(HEADER_BYTES + json.length);
  frame.writeUInt32LE(frame.length - 4, 0);
  frame.writeUInt16LE(PROTOCOL_VERSION, 4);
  frame.writeUInt16LE(kind, 6);
  json.copy(frame, HEADER_BYTES);
  return frame;
};

const decodeJson = (chunk: Buffer): number => {
  let offset = 0;
  let count = 0;
  while (offset + 4 <= chunk.length) {
    const end = offset + 4 + chunk.readUInt32LE(offset);
    JSON.parse(chunk.toString('utf8', offset + HEADER_BYTES, end));
    offset = end;
    count++;
  }
  return count;
};

export const run = async (options: BenchOptions): Promise<BenchResult> => {
  const messages = typicalMessages(new Random(Number(options.seed ?? 1)));
  const minMs = Number(options.minMs ?? 1500);
  const msgpackRound = () => {
    const decoder = new FrameDecoder();
    let decoded = 0;
    for (const m of messages) decoded += decoder.push(encodeFrame(m.kind, m.body)).frames.length;
    if (decoded !== messages.length) throw new Error('codec benchmark: frames lost');
  };
  const jsonRound = () => {
    let decoded = 0;
    for (const m of messages) decoded += decodeJson(encodeJson(m.kind, m.body));
    if (decoded !== messages.length) throw new Error('codec benchmark: frames lost');
  };
  // Warm both paths before measuring.
  await opsPerSecond(msgpackRound, { minMs: 200 });
  await opsPerSecond(jsonRound, { minMs: 200 });
  const framesPerSec = await opsPerSecond(msgpackRound, { minMs, opsPerCall: messages.length });
  const jsonFramesPerSec = await opsPerSecond(jsonRound, { minMs, opsPerCall: messages.length });
  const bytes = messages.reduce((n, m) => n + encodeFrame(m.kind, m.body).length, 0);
  const jsonBytes = messages.reduce((n, m) => n + encodeJson(m.kind, m.body).length, 0);
  return {
    benchmark: 'codec',
    measured: describe,
    framesPerSec: round(framesPerSec),
    jsonFramesPerSec: round(jsonFramesPerSec),
    ratioVsJson: round(framesPerSec / jsonFramesPerSec),
    bytesPerFrame: round(bytes / messages.length),
    jsonBytesPerFrame: round(jsonBytes / messages.length),
  };
};
