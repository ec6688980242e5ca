// Operator warnings that repeat — a peer that is down is redialled about once a second — are logged the
// first time, then at most once per interval for the same key, each saying how many like it were held
// back since the one before, so one down peer does not flood the log and none is lost from the count.

/** Keys remembered at most: past it, keys quiet for a whole interval are forgotten (strangers' addresses). */
const MAX_KEYS = 1024;

export class WarningLimiter {
  private readonly seen = new Map<string, { at: number; held: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Whether to log a warning of kind `key` now: null to hold it back (it is counted), else how many of
   * its kind were held back since the last one logged.
   */
  admit(key: string): number | null {
    const now = this.now();
    const seen = this.seen.get(key);
    if (seen !== undefined && now - seen.at < this.intervalMs) {
      seen.held++;
      return null;
    }
    if (seen === undefined && this.seen.size >= MAX_KEYS) this.forgetQuiet(now);
    this.seen.set(key, { at: now, held: 0 });
    return seen?.held ?? 0;
  }

  private forgetQuiet(now: number): void {
    for (const [key, seen] of this.seen) if (now - seen.at >= this.intervalMs) this.seen.delete(key);
  }
}
