// The benchmark harness's CPU reader: what /proc/PID/stat says a process used agrees with what the
// process itself measures (process.cpuUsage), to within the kernel's clock tick.

import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { processCpuMicros, processesCpuMicros } from '../../benchmarks/harness.ts';

/**
 * Keep this process busy, in user code and in the kernel (reading a /proc file is system time), until each
 * of process.cpuUsage()'s user and system time has grown by at least `micros`.
 */
const burn = (micros: number): void => {
  const start = process.cpuUsage();
  let sink = 0;
  for (;;) {
    for (let i = 0; i < 10_000; i++) sink += Math.sqrt(i);
    for (let i = 0; i < 20; i++) sink += readFileSync('/proc/self/stat').length;
    const used = process.cpuUsage(start);
    if (used.user >= micros && used.system >= micros) break;
  }
  expect(sink).to.be.greaterThan(0);
};

describe('benchmark harness: process CPU time', () => {
  it("reads a process's user + system CPU from /proc, agreeing with process.cpuUsage to a few clock ticks", function () {
    if (processCpuMicros(process.pid) === undefined) this.skip(); // no /proc: not Linux
    const own = (): number => {
      const usage = process.cpuUsage();
      return usage.user + usage.system;
    };
    const procBefore = processCpuMicros(process.pid) as number;
    const ownBefore = own();
    burn(150_000);
    const procUsed = (processCpuMicros(process.pid) as number) - procBefore;
    const ownUsed = own() - ownBefore;
    // Both count every thread of this process; /proc in whole ticks (10 ms at USER_HZ 100), with a
    // tick's rounding at each end of each of user and system. Either half alone is off by 150 ms or more.
    expect(Math.abs(procUsed - ownUsed)).to.be.at.most(40_000 + ownUsed * 0.05);
  });

  it('sums several processes and gives up on one that is gone', function () {
    const mine = processCpuMicros(process.pid);
    if (mine === undefined) this.skip();
    const twice = processesCpuMicros([process.pid, process.pid]) as number;
    expect(twice).to.be.at.least(2 * (mine as number));
    expect(processesCpuMicros([process.pid, 2 ** 22 + 1])).to.equal(undefined); // above pid_max's ceiling
  });
});
