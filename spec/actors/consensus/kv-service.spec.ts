// The replicated KV/register service (actors/services/kv.ts): operations, exact per-session dedup,
// tables bounded by the client's floor, and snapshots.

import { expect } from 'chai';
import { EntryKind, type LogEntry } from '../../../actors/log/log-entry.ts';
import { encodeSessionMessage } from '../../../actors/log/session-message.ts';
import {
  decodeKvCommand,
  encodeKvCommand,
  type KvCommand,
  type KvReply,
  KvService,
} from '../../../actors/services/kv.ts';
import { encodeSessionClose } from '../../../actors/sessions/payloads.ts';

let index = 0;
const command = (sessionId: number, correlationId: number, cmd: KvCommand, lowestAwaited = 0): LogEntry => ({
  index: ++index,
  term: 1,
  timestamp: 0,
  kind: EntryKind.SESSION_MESSAGE,
  payload: encodeSessionMessage(sessionId, correlationId, lowestAwaited, encodeKvCommand(cmd)),
});
const result = (reply: KvReply | null) => (reply?.outcome.applied ? reply.outcome.result : reply?.outcome);

describe('kv service', () => {
  beforeEach(() => {
    index = 0;
  });

  it('get, put and compare-and-set on registers that start at null', () => {
    const kv = new KvService();
    expect(result(kv.apply(command(1, 1, { op: 'get', key: 'a' })))).to.deep.equal({ value: null });
    expect(
      result(kv.apply(command(1, 2, { op: 'cas', key: 'a', expected: null, value: 'x' }))),
    ).to.deep.equal({ ok: true });
    expect(result(kv.apply(command(1, 3, { op: 'cas', key: 'a', expected: 'y', value: 'z' })))).to.deep.equal(
      { ok: false },
    );
    expect(result(kv.apply(command(1, 4, { op: 'put', key: 'a', value: 'w' })))).to.deep.equal({ ok: true });
    expect(result(kv.apply(command(1, 5, { op: 'get', key: 'a' })))).to.deep.equal({ value: 'w' });
  });

  it('a retried command (same session and correlation id) is applied once and gets the original reply', () => {
    const kv = new KvService();
    const first = kv.apply(command(1, 1, { op: 'cas', key: 'a', expected: null, value: 'x' }));
    kv.apply(command(2, 1, { op: 'put', key: 'a', value: 'other' }));
    const retry = kv.apply(command(1, 1, { op: 'cas', key: 'a', expected: null, value: 'x' }));
    expect(first).to.deep.include({ outcome: { applied: true, result: { ok: true } }, duplicate: false });
    expect(retry).to.deep.include({ outcome: { applied: true, result: { ok: true } }, duplicate: true });
    expect(kv.get('a')).to.equal('other');
  });

  it('a retry delivered after many newer commands of its session is still answered, not applied again', () => {
    // Was: the last 16 replies were kept, so a retry 20 commands later applied a second time.
    const kv = new KvService();
    kv.apply(command(1, 1, { op: 'put', key: 'k', value: 'first' }, 1));
    // The client still awaits 1 (its reply was lost): every newer command says so.
    for (let c = 2; c <= 40; c++) kv.apply(command(1, c, { op: 'put', key: 'k', value: `v${c}` }, 1));
    const retry = kv.apply(command(1, 1, { op: 'put', key: 'k', value: 'first' }, 1));
    expect(retry).to.deep.include({ outcome: { applied: true, result: { ok: true } }, duplicate: true });
    expect(kv.get('k')).to.equal('v40');
  });

  it('applies a command that reached the log after a newer one of its session (BUSY resend order)', () => {
    const kv = new KvService();
    expect(result(kv.apply(command(1, 73, { op: 'put', key: 'b', value: '73' }, 72)))).to.deep.equal({
      ok: true,
    });
    expect(result(kv.apply(command(1, 72, { op: 'put', key: 'a', value: '72' }, 72)))).to.deep.equal({
      ok: true,
    });
    expect([kv.get('a'), kv.get('b')]).to.deep.equal(['72', '73']);
  });

  it('forgets replies below the client’s lowest awaited id; a stale copy below it is never applied', () => {
    const kv = new KvService();
    for (let c = 1; c <= 5; c++) kv.apply(command(1, c, { op: 'put', key: 'k', value: `v${c}` }, c));
    kv.apply(command(1, 6, { op: 'get', key: 'k' }, 6));
    const stale = kv.apply(command(1, 2, { op: 'put', key: 'k', value: 'v2' }, 2));
    expect(stale?.outcome).to.deep.equal({ applied: false, unknown: true });
    expect(kv.get('k')).to.equal('v5');
    // Closing the session drops its table.
    kv.apply({
      index: ++index,
      term: 1,
      timestamp: 0,
      kind: EntryKind.SESSION_CLOSE,
      payload: encodeSessionClose({ sessionId: 1, reason: 'CLIENT_ACTION' }),
    });
    const reopened = kv.snapshot();
    expect(KvService.restore(reopened).apply(command(1, 6, { op: 'get', key: 'k' }, 6))?.duplicate).to.equal(
      false,
    );
  });

  it('refuses a command past the session’s window of unanswered commands, without applying it', () => {
    const kv = new KvService({ window: 3 });
    for (let c = 1; c <= 3; c++) kv.apply(command(1, c, { op: 'put', key: 'k', value: `v${c}` }, 1));
    const refused = kv.apply(command(1, 4, { op: 'put', key: 'k', value: 'v4' }, 1));
    expect(refused?.outcome).to.deep.include({ applied: false, unknown: false });
    expect(kv.get('k')).to.equal('v3');
    // Once the client has its answers, the window moves on.
    expect(result(kv.apply(command(1, 4, { op: 'put', key: 'k', value: 'v4' }, 4)))).to.deep.equal({
      ok: true,
    });
  });

  it('snapshots and restores its data, dedup tables and applied position', () => {
    const kv = new KvService();
    kv.apply(command(1, 1, { op: 'put', key: 'a', value: 'x' }));
    const restored = KvService.restore(kv.snapshot());
    expect(restored.get('a')).to.equal('x');
    expect(restored.appliedIndex).to.equal(1);
    expect(restored.apply(command(1, 1, { op: 'put', key: 'a', value: 'x' }))?.duplicate).to.equal(true);
  });

  it('applies entries once, in order, and ignores non-session entries', () => {
    const kv = new KvService();
    const e = command(1, 1, { op: 'get', key: 'a' });
    kv.apply(e);
    expect(() => kv.apply(e)).to.throw(/applied after/);
    expect(
      kv.apply({
        index: 2,
        term: 1,
        timestamp: 0,
        kind: EntryKind.NEW_LEADERSHIP_TERM,
        payload: new Uint8Array(),
      }),
    ).to.equal(null);
  });

  it('rejects a malformed command with a message naming the problem', () => {
    expect(() => decodeKvCommand(encodeKvCommand({ op: 'del', key: 'a' } as unknown as KvCommand))).to.throw(
      /op "del"/,
    );
  });
});
