import { describe, expect, it } from 'vitest'

import { retryDelayMs } from './backoff.ts'

describe('retryDelayMs', () => {
  const policy = { baseMs: 1_000, capMs: 60_000 }

  it('doubles the ceiling with each attempt and waits between half and all of it', () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, policy, () => 0))).toEqual([
      500, 1_000, 2_000, 4_000,
    ])
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, policy, () => 1))).toEqual([
      1_000, 2_000, 4_000, 8_000,
    ])
  })

  it('never waits longer than the cap, however many attempts failed', () => {
    expect(retryDelayMs(50, policy, () => 1)).toBe(60_000)
    expect(retryDelayMs(5_000, policy, () => 0)).toBe(30_000)
  })
})
