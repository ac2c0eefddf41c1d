import { describe, expect, it } from 'vitest'

import { FetchGate } from './fetch-gate.ts'

/** A fetch the test finishes by hand, counting how many were started. */
function manualFetches() {
  const started: (() => void)[] = []
  return {
    started,
    fetch: () => new Promise<void>((resolve) => started.push(resolve)),
  }
}

describe('FetchGate', () => {
  it('runs one fetch, then ONE follow-up for every request made while it ran', async () => {
    const gate = new FetchGate()
    const { started, fetch } = manualFetches()

    const first = gate.request(fetch)
    const during = [gate.request(fetch), gate.request(fetch), gate.request(fetch)]
    expect(started).toHaveLength(1)

    started[0]?.()
    await first
    await Promise.resolve()
    await Promise.resolve()
    expect(started).toHaveLength(2)
    started[1]?.()
    await Promise.all(during)
    expect(started).toHaveLength(2)
  })

  it('starts a new fetch for a request made after the last one ended', async () => {
    const gate = new FetchGate()
    let count = 0
    const fetch = () => {
      count++
      return Promise.resolve()
    }

    await gate.request(fetch)
    await gate.request(fetch)

    expect(count).toBe(2)
  })

  it('lets the follow-up run after a failed fetch, and idle() waits for both', async () => {
    const gate = new FetchGate()
    const order: string[] = []
    const failing = gate.request(async () => {
      order.push('first')
      await Promise.resolve()
      throw new Error('forge down')
    })
    const second = gate.request(() => {
      order.push('second')
      return Promise.resolve()
    })

    await gate.idle()

    await expect(failing).rejects.toThrow('forge down')
    await expect(second).resolves.toBeUndefined()
    expect(order).toEqual(['first', 'second'])
  })
})
