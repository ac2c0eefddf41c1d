import { describe, expect, it } from 'vitest'

import { challengeSchema } from '../config/challenge.ts'
import { quotaPolicy, quotaSubject } from './policy.ts'

const definition = challengeSchema.parse({
  id: 'iris',
  title: 'Iris',
  data: { inputs: 'in', labels: 'labels' },
  phases: [{ name: 'predict', image: 'participant' }],
  quota: { limit: 5, window: '24h', inFlight: 2, debugLimit: 20 },
  rounds: [
    { id: 'warm-up', start: '2026-01-01T00:00:00Z', end: '2026-02-01T00:00:00Z' },
    {
      id: 'final',
      start: '2026-02-01T00:00:00Z',
      end: '2026-03-01T00:00:00Z',
      quota: { limit: 2, period: 'day', timeZone: 'Europe/Zurich' },
    },
  ],
})

describe('quotaPolicy', () => {
  it('applies the challenge quota across rounds that set none', () => {
    expect(quotaPolicy(definition, { roundId: 'warm-up', debug: false })).toEqual({
      window: { kind: 'rolling', ms: 86_400_000 },
      limit: 5,
      inFlight: 2,
      roundId: null,
    })
  })

  it('applies a round’s own quota, counted in that round only', () => {
    expect(quotaPolicy(definition, { roundId: 'final', debug: false })).toEqual({
      window: { kind: 'calendar', period: 'day', timeZone: 'Europe/Zurich' },
      limit: 2,
      inFlight: null,
      roundId: 'final',
    })
  })

  it('counts debug submissions against the debug limit', () => {
    expect(quotaPolicy(definition, { roundId: null, debug: true }).limit).toBe(20)
  })
})

describe('quotaSubject', () => {
  it('charges the team when the pusher has one, else the pusher', () => {
    expect(quotaSubject({ username: 'alice', team: 'owls' })).toBe('team:owls')
    expect(quotaSubject({ username: 'alice', team: null })).toBe('alice')
  })
})
