// Helpers for tests that start real listeners.

export { freePort, freePorts } from '../../runtime/local-cluster.ts';

/**
 * Resolve once `check` holds, polling every `intervalMs`; a check that throws counts as "not yet". Rejects
 * naming `what` (and the last error) after `timeoutMs`.
 */
export const eventually = async (
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
  intervalMs = 5,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  let last = 'condition false';
  for (;;) {
    try {
      if (await check()) return;
      last = 'condition false';
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${last})`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
};
