// The determinism check on a TestCluster (the model tester's, runtime/testkit/model/determinism.ts): while
// the simulation runs, the clock, randomness, timers and promises are tripwires, armed only while a
// member's shards apply committed entries; the services' machines are instrumented so a trip names the
// action, guard or delay it happened in. A service that reads Date.now() or Math.random() in an action
// then fails the run at once with a NondeterminismError naming the action, the member, the entries and
// the seed — not later, as members that disagree.

import type { HostedService } from '../../../actors/actor-runtime/service.ts';
import type { ServiceReply } from '../../../actors/consensus/module-types.ts';
import type { LogEntry } from '../../../actors/log/log-entry.ts';
import { ActorSimServices } from '../../sim/services.ts';
import { DeterminismGuard } from '../model/determinism.ts';

/** The services with every statechart actor type's machine instrumented by `guard`. */
export const instrumentServices = (
  services: readonly HostedService[],
  guard: DeterminismGuard,
): HostedService[] =>
  services.map((service) => ({
    ...service,
    actorTypes: new Map(
      [...service.actorTypes].map(([name, type]) => [
        name,
        type.machine ? { ...type, machine: guard.instrument(type.machine) } : type,
      ]),
    ),
  }));

/** A member's actor services whose every apply runs as one guarded step. */
export class GuardedSimServices extends ActorSimServices {
  constructor(
    shards: number,
    services: readonly HostedService[],
    private readonly guard: DeterminismGuard,
    private readonly where: (entries: readonly LogEntry[]) => string,
  ) {
    super(shards, services);
  }

  override apply(entries: readonly LogEntry[], replies: boolean): ServiceReply[] {
    return this.guard.run(this.where(entries), () => super.apply(entries, replies));
  }
}

/**
 * One guard for every TestCluster in the process, its tripwires set while any of them drives: two
 * clusters driving at once would otherwise set and restore the globals out of order (the second
 * restoring the first's wrappers for good). Applies never nest (they are synchronous), so one guard
 * serves them all.
 */
export const clusterGuard = new DeterminismGuard();
let holders = 0;
let restore: (() => void) | null = null;

/** Set the tripwires (once for all holders); the returned call releases this hold. */
export const holdTripwires = (): (() => void) => {
  if (holders++ === 0) restore = clusterGuard.setTripwires();
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holders === 0) {
      restore?.();
      restore = null;
    }
  };
};
