import { describe, expect, it } from 'vitest'

import { DEFAULT_RETENTION_POLICY, retentionPolicyFor } from './retention-policy.ts'
import { decideRetention, type RetentionCandidate } from './retention-decide.ts'
import { challengeSchema } from '../config/challenge.ts'

let next = 0
function candidate(overrides: Partial<RetentionCandidate> = {}): RetentionCandidate {
  next++
  return {
    submissionId: next,
    challengeId: 'iris',
    participant: 'alice',
    state: 'scored',
    score: 0.5,
    debug: false,
    createdAt: `2026-01-${String(next).padStart(2, '0')}T00:00:00Z`,
    pinned: false,
    onLeaderboard: false,
    busy: false,
    reference: `127.0.0.1:5000/p/iris/alice@sha256:${String(next).padStart(64, '0')}`,
    ...overrides,
  }
}

const ended = {
  now: new Date('2026-06-01T00:00:00Z'),
  end: new Date('2026-03-01T00:00:00Z'),
  acceptingSubmissions: true,
  direction: 'maximize' as const,
}
const policy = {
  keepUntilEnd: true,
  keepBestPerParticipant: 2,
  keepLastPerParticipant: 1,
  graceDays: 30,
}

function actions(decisions: ReturnType<typeof decideRetention>) {
  return Object.fromEntries(
    decisions.map((d) => [d.submissionId, d.action === 'keep' ? d.reasons.join('+') : 'expire']),
  )
}

describe('decideRetention', () => {
  it("keeps each participant's best N and last M and expires the rest after the grace period", () => {
    const list = [
      candidate({ score: 0.9 }),
      candidate({ score: 0.1 }),
      candidate({ score: 0.8 }),
      candidate({ score: 0.3 }),
      candidate({ participant: 'bob', score: 0.2 }),
    ]
    const [best, low, second, last, bob] = list.map((c) => c.submissionId)

    const result = actions(decideRetention(list, policy, ended))

    expect(result).toEqual({
      [best!]: 'best',
      [low!]: 'expire',
      [second!]: 'best',
      [last!]: 'last',
      [bob!]: 'best+last',
    })
  })

  it('ranks by score in the challenge’s direction and ignores debug and unscored submissions for best', () => {
    const list = [
      candidate({ score: 0.9 }),
      candidate({ score: 0.1 }),
      candidate({ score: 0.05, debug: true }),
      candidate({ state: 'failed', score: null }),
      candidate({ score: 0.5 }),
    ]
    const result = decideRetention(
      list,
      { ...policy, keepBestPerParticipant: 1, keepLastPerParticipant: 0 },
      { ...ended, direction: 'minimize' },
    )
    expect(result.filter((d) => d.reasons.includes('best')).map((d) => d.submissionId)).toEqual([
      list[1]?.submissionId,
    ])
  })

  it('keeps pinned, leaderboard, busy and unfinished submissions whatever their rank', () => {
    const list = [
      candidate({ pinned: true }),
      candidate({ onLeaderboard: true }),
      candidate({ busy: true }),
      candidate({ state: 'evaluating' }),
      candidate(),
    ]
    const result = decideRetention(
      list,
      { ...policy, keepBestPerParticipant: 0, keepLastPerParticipant: 0, graceDays: 0 },
      ended,
    )
    expect(result.map((d) => (d.action === 'keep' ? d.reasons[0] : 'expire'))).toEqual([
      'pinned',
      'leaderboard',
      'busy',
      'not_finished',
      'expire',
    ])
  })

  it('keeps everything until the challenge ends, then counts the grace from the end', () => {
    const list = [candidate({ createdAt: '2026-01-01T00:00:00Z' })]
    const zero = { ...policy, keepBestPerParticipant: 0, keepLastPerParticipant: 0 }

    const running = decideRetention(list, zero, { ...ended, now: new Date('2026-02-01T00:00:00Z') })
    const inGrace = decideRetention(list, zero, { ...ended, now: new Date('2026-03-15T00:00:00Z') })
    const after = decideRetention(list, zero, { ...ended, now: new Date('2026-04-01T00:00:00Z') })

    expect(running[0]).toMatchObject({
      action: 'keep',
      reasons: ['challenge_open'],
      expiresAt: null,
    })
    expect(inGrace[0]).toMatchObject({
      action: 'keep',
      reasons: ['grace'],
      expiresAt: '2026-03-31T00:00:00.000Z',
    })
    expect(after[0]).toMatchObject({ action: 'expire', expiresAt: '2026-03-31T00:00:00.000Z' })
  })

  it('counts the grace from the push when the policy does not wait for the end', () => {
    const list = [candidate({ createdAt: '2026-01-01T00:00:00Z' })]
    const result = decideRetention(
      list,
      {
        ...policy,
        keepUntilEnd: false,
        keepBestPerParticipant: 0,
        keepLastPerParticipant: 0,
        graceDays: 10,
      },
      { ...ended, now: new Date('2026-01-20T00:00:00Z') },
    )
    expect(result[0]).toMatchObject({ action: 'expire', expiresAt: '2026-01-11T00:00:00.000Z' })
  })

  it('keeps an image another kept submission uses (a reused build)', () => {
    const shared = '127.0.0.1:5000/p/iris/alice@sha256:' + 'f'.repeat(64)
    const list = [
      candidate({ reference: shared, score: 0.1 }),
      candidate({ reference: shared, pinned: true }),
    ]
    const result = decideRetention(
      list,
      { ...policy, keepBestPerParticipant: 0, keepLastPerParticipant: 0, graceDays: 0 },
      ended,
    )
    expect(result.map((d) => d.reasons)).toEqual([['shared'], ['pinned']])

    const outside = decideRetention(
      [candidate({ reference: shared })],
      { ...policy, keepBestPerParticipant: 0, keepLastPerParticipant: 0, graceDays: 0 },
      ended,
      [{ reference: shared }],
    )
    expect(outside[0]?.reasons).toEqual(['shared'])
  })
})

describe('retentionPolicyFor', () => {
  const definition = challengeSchema.parse({
    id: 'iris',
    title: 't',
    data: { inputs: 'i', labels: 'l' },
    phases: [{ name: 'predict', image: 'participant' }],
  })

  it('gives the defaults, overridden by the caller, and refuses bad values naming the field', () => {
    expect(retentionPolicyFor(definition)).toEqual(DEFAULT_RETENTION_POLICY)
    expect(retentionPolicyFor(definition, { graceDays: 0 })).toEqual({
      ...DEFAULT_RETENTION_POLICY,
      graceDays: 0,
    })
    expect(() => retentionPolicyFor(definition, { keepBestPerParticipant: -1 })).toThrow(
      /retention\.keepBestPerParticipant/,
    )
  })
})
