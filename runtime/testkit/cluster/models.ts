// Linearizability models a TestCluster checks its recorded history against. A service declares how its
// commands read and write registers (one register per key: get, put, compare-and-set); the history of
// every command the model covers is then checked by the simulator's checker (runtime/sim/kv-history.ts,
// Wing & Gong's search with Lowe's memoisation, one key at a time). The built-in KV service ships its
// model (`kvModel`); a register-like actor service declares one with `registerModel`.

import { unpack } from 'msgpackr';
import type { z } from 'zod';
import type { CommandOf, Service } from '../../../actors/actor-runtime/service.ts';
import { decodeKvCommand } from '../../../actors/services/kv.ts';
import { decodeServiceReply } from '../../actor-runtime/service-client.ts';
import type { KvInput, KvOutput } from '../../sim/kv-history.ts';

export type { KvInput as RegisterInput, KvOutput as RegisterOutput } from '../../sim/kv-history.ts';

/** How a service's commands and replies read as register operations. */
export interface HistoryModel {
  /** What the model is called in reports. */
  readonly name: string;
  /** The command (its bytes as the client sent them) as a register operation; null: not covered. */
  operation(body: Uint8Array): KvInput | null;
  /**
   * The reply as the operation's output; null when the reply says the command was not applied (a
   * refusal): such an operation constrains nothing.
   */
  output(input: KvInput, reply: Uint8Array): KvOutput | null;
}

/** The built-in KV service (get, put, compare-and-set): every command is a register operation on its key. */
export const kvModel: HistoryModel = {
  name: 'kv',
  operation(body) {
    try {
      return decodeKvCommand(body);
    } catch {
      return null;
    }
  },
  output(input, reply) {
    const value = unpack(reply) as Partial<{ value: string | null; ok: boolean; refused: string }> | null;
    if (value === null || typeof value !== 'object' || 'refused' in value) return null;
    if (input.op === 'get') return 'value' in value ? { value: value.value ?? null } : null;
    return typeof value.ok === 'boolean' ? { ok: value.ok } : null;
  },
};

/** How a register-like actor service's commands and reply values map onto get, put and cas. */
export interface RegisterSpec<C> {
  /** The command as a register operation (values as strings); null: not a register operation. */
  operation(command: C): KvInput | null;
  /** The reply's value (of a command the actor accepted) as the operation's output. */
  output(input: KvInput, value: unknown): KvOutput;
}

/** A linearizability model for an actor service whose actors behave as registers. */
export const registerModel = <C extends Record<string, z.ZodType>>(
  service: Service<C>,
  spec: RegisterSpec<CommandOf<C>>,
): HistoryModel => ({
  name: service.name,
  operation(body) {
    const sent = unpack(body) as unknown;
    if (!Array.isArray(sent) || sent.length !== 2 || sent[0] !== service.name) return null;
    return spec.operation(sent[1] as CommandOf<C>);
  },
  output(input, reply) {
    const decoded = decodeServiceReply(reply);
    return decoded.ok ? spec.output(input, decoded.value) : null;
  },
});
