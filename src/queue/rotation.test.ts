import { describe, expect, it } from 'vitest'

import { queueWeight, WeightedRotation } from './rotation.ts'

/** Serves `count` jobs from queues that always have work; returns the queues in order. */
function serveBusy(
  rotation: WeightedRotation,
  queues: string[],
  weights: Record<string, number>,
  count: number,
) {
  const served: string[] = []
  for (let i = 0; i < count; i++) {
    const [first] = rotation.order(queues)
    if (!first) break
    rotation.served(first, queueWeight(weights, first), [])
    served.push(first)
  }
  return served
}

describe('WeightedRotation', () => {
  it('serves queues weighted 3 and 1 three to one, interleaved', () => {
    const served = serveBusy(new WeightedRotation(), ['big', 'small'], { big: 3 }, 40)

    expect(served.filter((q) => q === 'big')).toHaveLength(30)
    // Never more than three of one queue in a row: shares are interleaved, not batched.
    expect(served.join(',')).not.toMatch(/(big,){4}/)
  })

  it('serves equal weights in turn', () => {
    expect(serveBusy(new WeightedRotation(), ['a', 'b', 'c'], {}, 6)).toEqual([
      'a',
      'b',
      'c',
      'a',
      'b',
      'c',
    ])
  })

  it('gives a queue that was empty no burst when its work arrives', () => {
    const rotation = new WeightedRotation()
    // `a` serves 50 jobs while `b` is tried first each time and found empty.
    for (let i = 0; i < 50; i++) {
      const order = rotation.order(['a', 'b'])
      const skipped = order.slice(0, order.indexOf('a'))
      rotation.served('a', 1, skipped)
    }

    const served = serveBusy(rotation, ['a', 'b'], {}, 10)

    expect(served.filter((q) => q === 'b')).toHaveLength(5)
  })

  it('refuses a weight that is not a positive number', () => {
    expect(() => queueWeight({ a: 0 }, 'a')).toThrow('queue weight for a is 0')
    expect(queueWeight(undefined, 'a')).toBe(1)
  })
})
