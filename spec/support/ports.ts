// Helpers for tests that start real listeners.

export { freePort, freePorts } from '../../runtime/local-cluster.ts';

/** Resolve once `check` is true, polling every few ms; reject with `what` after `timeoutMs`. */
export const eventually = async (check: () => boolean, what: string, timeoutMs = 5000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};
