// The replicated KV/register service (actors/services/kv.ts): operations, per-session dedup (C2),
// bounded tables and snapshots.

import { expect } from 'chai';
import { encodeSessionMessage } from '../../../actors/consensus/session-message.ts';
import { decodeKvCommand, encodeKvCommand, type KvCommand, KvService } from '../../../actors/services/kv.ts';
import { EntryKind, type LogEntry } from '../../../machines/log-entry.ts';

let index = 0;
const command = (sessionId: number, correlationId: number, cmd: KvCommand): LogEntry => ({
  index: ++index,
  term: 1,
  timestamp: 0,
  kind: EntryKind.SESSION_MESSAGE,
  payload: encodeSessionMessage(sessionId, correlationId, encodeKvCommand(cmd)),
});

describe('kv service', () => {
  beforeEach(() => {
    index = 0;
  });

  it('get, put and compare-and-set on registers that start at null', () => {
    const kv = new KvService();
    expect(kv.apply(command(1, 1, { op: 'get', key: 'a' }))?.result).to.deep.equal({ value: null });
    expect(
      kv.apply(command(1, 2, { op: 'cas', key: 'a', expected: null, value: 'x' }))?.result,
    ).to.deep.equal({ ok: true });
    expect(kv.apply(command(1, 3, { op: 'cas', key: 'a', expected: 'y', value: 'z' }))?.result).to.deep.equal(
      { ok: false },
    );
    expect(kv.apply(command(1, 4, { op: 'put', key: 'a', value: 'w' }))?.result).to.deep.equal({ ok: true });
    expect(kv.apply(command(1, 5, { op: 'get', key: 'a' }))?.result).to.deep.equal({ value: 'w' });
  });

  it('C2: a retried command (same session and correlation id) is applied once and gets the original reply', () => {
    const kv = new KvService();
    const first = kv.apply(command(1, 1, { op: 'cas', key: 'a', expected: null, value: 'x' }));
    kv.apply(command(2, 1, { op: 'put', key: 'a', value: 'other' }));
    const retry = kv.apply(command(1, 1, { op: 'cas', key: 'a', expected: null, value: 'x' }));
    expect(first).to.deep.include({ result: { ok: true }, duplicate: false });
    expect(retry).to.deep.include({ result: { ok: true }, duplicate: true });
    expect(kv.get('a')).to.equal('other');
  });

  it('bounds the dedup tables (per session and sessions)', () => {
    const kv = new KvService({ repliesPerSession: 2, maxSessions: 2 });
    for (let c = 1; c <= 3; c++) kv.apply(command(1, c, { op: 'put', key: 'k', value: `v${c}` }));
    // Correlation 1 was forgotten: a (very late) retry applies again.
    expect(kv.apply(command(1, 1, { op: 'put', key: 'k', value: 'v1' }))?.duplicate).to.equal(false);
    kv.apply(command(2, 1, { op: 'get', key: 'k' }));
    kv.apply(command(3, 1, { op: 'get', key: 'k' }));
    expect(
      kv.apply(command(1, 3, { op: 'put', key: 'k', value: 'v3' }))?.duplicate,
      'session 1 evicted',
    ).to.equal(false);
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
