// The consensus module's own lifecycle (Aeron's ConsensusModule.State): INIT while it recovers its
// log and node state, ACTIVE while it serves, SUSPENDED when an operator paused client input,
// SNAPSHOT while a snapshot is taken, TERMINATING while it drains for shutdown, CLOSED at the end.

import { setup } from 'xstate';

export const MODULE_STATES = ['INIT', 'ACTIVE', 'SUSPENDED', 'SNAPSHOT', 'TERMINATING', 'CLOSED'] as const;
export type ModuleState = (typeof MODULE_STATES)[number];

export type ModuleEvent =
  /** Recovery finished: the log and node state are loaded. */
  | { type: 'RECOVERED' }
  /** An operator suspended client input (cluster tool `suspend`). */
  | { type: 'SUSPEND' }
  /** An operator resumed client input. */
  | { type: 'RESUME' }
  /** A snapshot was requested (by an operator or the snapshot schedule). */
  | { type: 'SNAPSHOT_REQUESTED' }
  /** The services and the module wrote their snapshot. */
  | { type: 'SNAPSHOT_DONE' }
  /** Graceful shutdown began (SIGTERM, cluster tool `shutdown`). */
  | { type: 'SHUTDOWN' }
  /** Shutdown finished. */
  | { type: 'TERMINATED' };

export const consensusModuleMachine = setup({
  types: {} as { events: ModuleEvent },
}).createMachine({
  id: 'consensusModule',
  initial: 'INIT',
  states: {
    INIT: { on: { RECOVERED: 'ACTIVE', SHUTDOWN: 'TERMINATING' } },
    ACTIVE: { on: { SUSPEND: 'SUSPENDED', SNAPSHOT_REQUESTED: 'SNAPSHOT', SHUTDOWN: 'TERMINATING' } },
    SUSPENDED: { on: { RESUME: 'ACTIVE', SHUTDOWN: 'TERMINATING' } },
    SNAPSHOT: { on: { SNAPSHOT_DONE: 'ACTIVE', SHUTDOWN: 'TERMINATING' } },
    TERMINATING: { on: { TERMINATED: 'CLOSED' } },
    CLOSED: { type: 'final' },
  },
});

export type ConsensusModuleMachine = typeof consensusModuleMachine;
