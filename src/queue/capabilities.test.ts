import { describe, expect, it } from 'vitest'

import { capabilityKey, MAX_WORKER_CAPABILITIES, servableCapabilityKeys } from './capabilities.ts'

describe('capabilities', () => {
  it('stores a set sorted and without duplicates', () => {
    expect(capabilityKey(['gpu', 'large-memory', 'gpu'])).toBe('["gpu","large-memory"]')
    expect(capabilityKey([])).toBe('[]')
  })

  it('lets a worker run every subset of what it has, in the stored form', () => {
    const keys = servableCapabilityKeys(['large-memory', 'gpu'])

    expect(keys.sort()).toEqual(
      ['["gpu","large-memory"]', '["gpu"]', '["large-memory"]', '[]'].sort(),
    )
    expect(keys).toContain(capabilityKey(['large-memory', 'gpu']))
    expect(servableCapabilityKeys([])).toEqual(['[]'])
  })

  it('refuses a worker with more capabilities than the claim can list', () => {
    const many = Array.from({ length: MAX_WORKER_CAPABILITIES + 1 }, (_, i) => `c${i}`)

    expect(() => servableCapabilityKeys(many)).toThrow(/at most 10 are supported/)
  })
})
