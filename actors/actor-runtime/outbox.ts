// Actor-to-actor messages decided but not yet in the log. Every member keeps the same outbox by applying
// its shards' SEND outputs and the committed SERVICE_MESSAGE entries in log order; only the leader
// appends what is in it. A new leader appends everything still pending: a message that was appended
// after all is applied once, because the receiving shard drops a sender's seq it has already seen.

import { EntryKind, type LogEntry } from '../log/log-entry.ts';
import { EFFECT_DONE_FROM, messageId, pack, type ShardOutput, unpack } from './protocol.ts';

export const OUTBOX_SNAPSHOT_VERSION = 1;

export class Outbox {
  /** messageId → SERVICE_MESSAGE payload, in the order the sends were decided. */
  private readonly pending = new Map<string, Uint8Array>();
  /** Message ids the current leader has appended but not yet seen committed. */
  private readonly appended = new Set<string>();

  get size(): number {
    return this.pending.size;
  }

  /**
   * Track the SEND outputs among a batch of outputs, and drop sends whose message is now committed. The
   * sends go in first: a batch can hold a send's own message too (a member catching up, a replay), and
   * that message always comes after the entry that decided the send, so it must find the send to drop.
   */
  apply(entries: readonly LogEntry[], outputs: readonly ShardOutput[]): void {
    for (const output of outputs)
      if (output.type === 'SEND') this.pending.set(output.messageId, output.payload);
    for (const entry of entries) {
      if (entry.kind !== EntryKind.SERVICE_MESSAGE) continue;
      const [, from, seq] = unpack(entry.payload) as [string, string, number];
      if (from === EFFECT_DONE_FROM) continue;
      const id = messageId(from, seq);
      this.pending.delete(id);
      this.appended.delete(id);
    }
  }

  /** Leader: the payloads to append now (each once per leadership, until it is committed). */
  takeUnappended(): Uint8Array[] {
    const due: Uint8Array[] = [];
    for (const [id, payload] of this.pending) {
      if (this.appended.has(id)) continue;
      this.appended.add(id);
      due.push(payload);
    }
    return due;
  }

  /** A new leader appends every pending send again. */
  resetAppended(): void {
    this.appended.clear();
  }

  snapshot(): Uint8Array {
    return pack([OUTBOX_SNAPSHOT_VERSION, [...this.pending]]);
  }

  static restore(bytes: Uint8Array): Outbox {
    const decoded = unpack(bytes) as [number, [string, Uint8Array][]];
    if (!Array.isArray(decoded) || decoded[0] !== OUTBOX_SNAPSHOT_VERSION) {
      throw new Error(
        `Outbox.restore: unsupported snapshot version (this build reads ${OUTBOX_SNAPSHOT_VERSION})`,
      );
    }
    const outbox = new Outbox();
    for (const [id, payload] of decoded[1]) outbox.pending.set(id, payload);
    return outbox;
  }
}
