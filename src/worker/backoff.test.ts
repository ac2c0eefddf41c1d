import { describe, expect, it } from 'vitest'

import { backoffMs } from './backoff.ts'

describe('backoffMs', () => {
  it('doubles from 2 s with jitter in the upper half of each step', () => {
    for (const [attempt, ceiling] of [
      [1, 2_000],
      [2, 4_000],
      [3, 8_000],
    ] as const) {
      const samples = Array.from({ length: 200 }, () => backoffMs(attempt))
      expect(Math.min(...samples)).toBeGreaterThanOrEqual(ceiling / 2)
      expect(Math.max(...samples)).toBeLessThanOrEqual(ceiling)
    }
  })

  it('never waits longer than the cap', () => {
    expect(backoffMs(30)).toBeLessThanOrEqual(120_000)
    expect(backoffMs(30)).toBeGreaterThanOrEqual(60_000)
  })
})
