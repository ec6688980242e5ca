// TestCluster's linearizability check: the built-in KV service's history (kvModel, on by default) and a
// register-like actor service that declares its model with registerModel. The real register passes under
// the seed's faults; the same register with a planted wrong guard (compare-and-set that ignores the
// expected value) is reported NOT_LINEARIZABLE, naming the seed.

import { expect } from 'chai';
import { assign, emit, setup } from 'xstate';
import { z } from 'zod';
import { defineService, reply } from '../../actors/actor-runtime/service.ts';
import { encodeKvCommand, type KvCommand } from '../../actors/services/kv.ts';
import type { Random } from '../../machines/random.ts';
import {
  type HistoryModel,
  registerModel,
  TestCluster,
  TestClusterFailure,
} from '../../runtime/testkit/cluster/index.ts';

const KEYS = ['x', 'y'];

/** A register actor: READ, WRITE, and CAS (swap only when the value is the expected one). */
const registerMachine = setup({
  types: {
    context: {} as { value: string | null },
    events: {} as
      | { type: 'READ' }
      | { type: 'WRITE'; value: string }
      | { type: 'CAS'; expected: string | null; value: string },
  },
  guards: {
    holdsExpected: ({ context, event }) => event.type === 'CAS' && context.value === event.expected,
  },
}).createMachine({
  context: { value: null },
  on: {
    READ: { actions: emit(({ context }) => reply(context.value)) },
    WRITE: { actions: [assign({ value: ({ event }) => event.value }), emit(() => reply(true))] },
    CAS: [
      {
        guard: 'holdsExpected',
        actions: [assign({ value: ({ event }) => event.value }), emit(() => reply(true))],
      },
      { actions: emit(() => reply(false)) },
    ],
  },
});

const key = z.string().min(1);
const value = z.string();
const commands = {
  READ: z.object({ type: z.literal('READ'), key }),
  WRITE: z.object({ type: z.literal('WRITE'), key, value }),
  CAS: z.object({ type: z.literal('CAS'), key, expected: value.nullable(), value }),
};

const registerService = (machine: typeof registerMachine) =>
  defineService({
    name: 'registers',
    actors: { register: machine },
    commands,
    route: ({ key: actorId, ...event }) => ({ actorType: 'register', actorId, event }),
  });

const registers = registerService(registerMachine);
/** Planted: compare-and-set swaps whatever the register holds. */
const brokenRegisters = registerService(registerMachine.provide({ guards: { holdsExpected: () => true } }));

const registerHistory = (service: typeof registers): HistoryModel =>
  registerModel(service, {
    operation: (command) => {
      if (command.type === 'READ') return { op: 'get', key: command.key };
      if (command.type === 'WRITE') return { op: 'put', key: command.key, value: command.value };
      return { op: 'cas', key: command.key, expected: command.expected, value: command.value };
    },
    output: (input, value) =>
      input.op === 'get' ? { value: value as string | null } : { ok: value === true },
  });

/** A random register operation; cas expects a value written earlier (or null), so some of them swap. */
const randomOperation = (random: Random, written: string[], n: number): KvCommand => {
  const k = random.pick(KEYS);
  const roll = random.float();
  if (roll < 0.3) return { op: 'get', key: k };
  const next = `v${n}`;
  written.push(next);
  if (roll < 0.6) return { op: 'put', key: k, value: next };
  const expected = random.chance(0.2) || written.length < 2 ? null : random.pick(written.slice(-4));
  return { op: 'cas', key: k, expected, value: next };
};

/** Three clients, each one operation at a time, for `rounds`, under the seed's faults; then heal and idle. */
const drive = async (
  cluster: TestCluster,
  send: (client: number, op: KvCommand) => Promise<unknown>,
  rounds: number,
) => {
  cluster.faults({
    forMs: 2500,
    intensity: 0.6,
    kinds: ['crash', 'isolate', 'partition', 'pause', 'lossy-network'],
  });
  const written: string[] = [];
  let n = 0;
  const loop = async (client: number): Promise<void> => {
    for (let i = 0; i < rounds; i++) {
      await send(client, randomOperation(cluster.random, written, n++)).catch(() => undefined);
      await cluster.advance(cluster.random.int(5, 60));
    }
  };
  await cluster.run(Promise.all([0, 1, 2].map(loop)), { withinMs: 120_000 });
  cluster.heal();
  await cluster.runUntilIdle();
};

const asRegisterCommand = (op: KvCommand) =>
  op.op === 'get'
    ? ({ type: 'READ', key: op.key } as const)
    : op.op === 'put'
      ? ({ type: 'WRITE', key: op.key, value: op.value } as const)
      : ({ type: 'CAS', key: op.key, expected: op.expected, value: op.value } as const);

/** A register service with its model, three clients, 25 operations each under the seed's faults. */
const registerRun = async (service: typeof registers, seed: number): Promise<TestCluster> => {
  const cluster = new TestCluster({ services: [service], seed, models: [registerHistory(service)] });
  const clients = [0, 1, 2].map(() => cluster.serviceClient(service, { commandTimeoutMs: 3000 }));
  await drive(cluster, (client, op) => clients[client].command(asRegisterCommand(op)), 25);
  return cluster;
};

describe('testkit: TestCluster linearizability models', function () {
  this.timeout(60_000);

  it("the KV service's history under the seed's faults is checked with kvModel and is linearizable", async () => {
    const cluster = new TestCluster({ services: 'kv', seed: 12 });
    const clients = [0, 1, 2].map(() => cluster.client({ commandTimeoutMs: 3000 }));
    await drive(cluster, (client, op) => clients[client].send(encodeKvCommand(op)), 25);
    const report = cluster.verify();
    expect(report.linearizability).to.have.length(1);
    expect(report.linearizability[0]).to.deep.include({ model: 'kv', linearizable: true });
    expect(report.linearizability[0].operations).to.equal(75);
    expect(report.faultsInjected).to.be.greaterThan(0);
  });

  it('a register service declares its model with registerModel: its history is linearizable under faults', async () => {
    const cluster = await registerRun(registers, 13);
    const report = cluster.verify();
    expect(report.linearizability[0]).to.deep.include({
      model: 'registers',
      linearizable: true,
      operations: 75,
    });
  });

  it('a register whose compare-and-set ignores the expected value (a wrong guard) is reported NOT_LINEARIZABLE with the seed', async () => {
    const cluster = await registerRun(brokenRegisters, 13);
    const report = cluster.check();
    expect(report.violations, 'the cluster itself kept every rule').to.deep.equal([]);
    expect(report.linearizability[0]).to.deep.include({ linearizable: false, timedOut: false });
    expect(report.linearizability[0].explanation).to.match(/not linearizable/);
    expect(() => cluster.verify()).to.throw(
      TestClusterFailure,
      /seed 13[\s\S]*NOT_LINEARIZABLE \(registers\)/,
    );
  });
});
