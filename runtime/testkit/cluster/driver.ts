// Moves a TestCluster's virtual time for whatever the test awaits. The simulation runs synchronously, and
// replies reach the test's code through promises, whose continuations run only once the event loop turns:
// so time moves in small steps (2 ms by default) with one turn of the event loop (`setImmediate`) between
// them. However many waits the test has going at once (`advance` in several async tasks, a `run` beside
// them), one loop drives the simulation, and each wait ends at the first step that satisfies it — a run is
// the same, step for step, whatever the test awaits concurrently, so its seed replays it exactly.

import type { Simulation } from '../../sim/simulation.ts';

interface Wait {
  /** True once the wait is over. */
  readonly done: () => boolean;
  /** Virtual time the wait must reach exactly (a step never overshoots it). */
  readonly target: number;
  /** Virtual time past which the wait fails. */
  readonly deadline: number;
  readonly timedOut: () => Error;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** Let the test's promise continuations run. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class VirtualTimeDriver {
  private readonly waits: Wait[] = [];
  private driving = false;

  constructor(
    private readonly sim: Simulation,
    private readonly stepMs: number,
    /** Called as the driving starts; what it returns, as it stops (the determinism check's tripwires). */
    private readonly setUp: () => () => void = () => () => {},
  ) {
    if (!(stepMs > 0)) throw new RangeError(`TestCluster: stepMs must be > 0, got ${stepMs}`);
  }

  /**
   * Run until `done()` holds. `target`: a virtual time to reach exactly (a step ends there); past
   * `deadline` the wait fails with `timedOut()`.
   */
  until(
    done: () => boolean,
    {
      target = Number.POSITIVE_INFINITY,
      deadline = Number.POSITIVE_INFINITY,
      timedOut = () => new Error('timed out'),
    }: {
      target?: number;
      deadline?: number;
      timedOut?: () => Error;
    } = {},
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waits.push({ done, target, deadline, timedOut, resolve, reject });
      if (!this.driving) void this.drive();
    });
  }

  private async drive(): Promise<void> {
    this.driving = true;
    const tearDown = this.setUp();
    try {
      await turn();
      for (;;) {
        for (const wait of [...this.waits]) {
          const over = wait.done();
          if (!over && this.sim.now < wait.deadline) continue;
          this.waits.splice(this.waits.indexOf(wait), 1);
          if (over) wait.resolve();
          else wait.reject(wait.timedOut());
        }
        if (this.waits.length === 0) return;
        let step = this.stepMs;
        for (const wait of this.waits) {
          for (const at of [wait.target, wait.deadline])
            if (at > this.sim.now) step = Math.min(step, at - this.sim.now);
        }
        this.sim.runFor(step);
        await turn();
      }
    } catch (error) {
      // The simulation itself threw (a budget, a bug): every wait learns of it.
      for (const wait of this.waits.splice(0))
        wait.reject(error instanceof Error ? error : new Error(String(error)));
    } finally {
      tearDown();
      this.driving = false;
    }
  }
}
