/** How long to wait before retrying a failed delivery. */
export interface BackoffPolicy {
  /** The first retry's ceiling. */
  readonly baseMs: number
  /** No retry waits longer than this, however many attempts failed. */
  readonly capMs: number
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 2_000, capMs: 5 * 60_000 }

/**
 * Exponential backoff with jitter: after the nth failed attempt, a random wait between half
 * and all of min(cap, base·2^(n-1)). The jitter spreads the retries of many messages that
 * failed together (a platform outage) so they do not all arrive again at the same moment.
 */
export function retryDelayMs(
  attempt: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(0, attempt - 1), 30)
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** exponent)
  return Math.round(ceiling / 2 + random() * (ceiling / 2))
}
