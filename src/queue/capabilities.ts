import { ProctorError } from '../domain/errors.ts'

/**
 * Capabilities are matched in SQL as exact strings: a job stores its required set as sorted
 * JSON, and a worker asks for every subset of what it has. 2^n subsets, so a worker may
 * declare at most this many capabilities (1,024 strings in the claim's IN list).
 */
export const MAX_WORKER_CAPABILITIES = 10

/** The stored form of a capability set: sorted, without duplicates, as JSON. */
export function capabilityKey(capabilities: readonly string[]): string {
  return JSON.stringify([...new Set(capabilities)].sort())
}

/** Every stored capability set a worker with `have` can run, including the empty one. */
export function servableCapabilityKeys(have: readonly string[]): string[] {
  const unique = [...new Set(have)].sort()
  if (unique.length > MAX_WORKER_CAPABILITIES) {
    throw new ProctorError(
      'too_many_capabilities',
      `a worker declares ${unique.length} capabilities (${unique.join(', ')}); at most ` +
        `${MAX_WORKER_CAPABILITIES} are supported: drop the ones no challenge requires`,
    )
  }

  const keys: string[] = []
  for (let mask = 0; mask < 1 << unique.length; mask++) {
    // Picking in sorted order keeps each subset sorted, so it equals capabilityKey(subset).
    keys.push(JSON.stringify(unique.filter((_, i) => (mask & (1 << i)) !== 0)))
  }
  return keys
}
