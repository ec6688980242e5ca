// One way to run a fast-check property, for Chorus's specs and the testkit's random walks: a fresh seed
// every run (so the suite keeps looking at new cases), and on failure a message that starts with how to
// replay exactly that case.
//
//   FC_SEED=<seed> FC_PATH=<path> npx mocha <spec file>
//
// FC_SEED (and FC_PATH, the shrunk counterexample's path that fast-check prints) pin a run; without
// them the seed is drawn from Math.random, which tests may use (machines/ and actors/ may not).

import fc from 'fast-check';

const fromEnvironment = (name: string): string | undefined => {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
};

/** The seed for the next property: FC_SEED if set, otherwise a fresh one. */
export const propertySeed = (): number => {
  const pinned = fromEnvironment('FC_SEED');
  if (pinned !== undefined) {
    const seed = Number(pinned);
    if (!Number.isSafeInteger(seed)) throw new RangeError(`FC_SEED must be an integer, not '${pinned}'`);
    return seed;
  }
  return Math.floor(Math.random() * 0x7fffffff);
};

type Options<Ts> = Omit<fc.Parameters<Ts>, 'seed' | 'path'>;

const replayLine = (seed: number, error: unknown): Error => {
  const text = error instanceof Error ? error.message : String(error);
  const path = /path: "([^"]*)"/.exec(text)?.[1];
  const replay = `replay: FC_SEED=${seed}${path === undefined ? '' : ` FC_PATH=${path}`} npx mocha <this spec>`;
  const failure = new Error(`${replay}\n${text}`);
  if (error instanceof Error && error.stack) failure.stack = `${replay}\n${error.stack}`;
  return failure;
};

/** Check a property with a fresh (or FC_SEED-pinned) seed; a failure names the seed to replay it. */
export function checkProperty<Ts>(property: fc.IAsyncProperty<Ts>, options?: Options<Ts>): Promise<void>;
export function checkProperty<Ts>(property: fc.IProperty<Ts>, options?: Options<Ts>): void;
export function checkProperty<Ts>(
  property: fc.IProperty<Ts> | fc.IAsyncProperty<Ts>,
  options: Options<Ts> = {},
): void | Promise<void> {
  const seed = propertySeed();
  const path = fromEnvironment('FC_PATH');
  const parameters: fc.Parameters<Ts> = { ...options, seed, ...(path === undefined ? {} : { path }) };
  if (property.isAsync()) {
    return fc.assert(property as fc.IAsyncProperty<Ts>, parameters).catch((error: unknown) => {
      throw replayLine(seed, error);
    });
  }
  try {
    fc.assert(property as fc.IProperty<Ts>, parameters);
  } catch (error) {
    throw replayLine(seed, error);
  }
}
