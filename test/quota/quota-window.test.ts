import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { parseWindow, type QuotaWindow } from '../../src/quota/window.ts'
import { testContext, type TestContext } from '../queue/support/builders.ts'
import { STORE_FACTORIES } from '../queue/support/stores.ts'
import fixture from './fixtures/quota-window.json' with { type: 'json' }
import { pushTag } from './support/push.ts'

/**
 * Quota windows end to end: pushes at fixed instants, charged (or refused) against a real
 * database. The sequence is /work/shared/fixtures/sequences/quota-window.json (copied into
 * ./fixtures); where the fixture gives no expectation for a policy, the test states it.
 */
type Expectation = 'accepted' | 'over quota'

interface FixturePush {
  at: string
  tag: string
  expect?: string
  expect_rolling?: string
  expect_calendar_utc?: string
}

function expected(text: string | undefined): Expectation | undefined {
  if (text === undefined) return undefined
  return text.startsWith('accepted') ? 'accepted' : 'over quota'
}

describe.each(STORE_FACTORIES)('quota windows on $dialect', (factory) => {
  let ctx: TestContext

  beforeEach(async (context) => {
    ctx = testContext(await factory.open(context.task.name))
  })
  afterEach(async () => {
    await ctx.store.close()
  })

  async function pushAt(at: string, window: QuotaWindow, limit: number, subject = 'alice') {
    ctx.clock.set(at)
    const outcome = await pushTag(ctx, { window, limit, subject })
    return { ...outcome, verdict: outcome.accepted ? 'accepted' : 'over quota' }
  }

  it('follows the fixture with a rolling 24 h window, half-open at exactly 24 h', async () => {
    const window = parseWindow({ window: '24h' })
    const verdicts: Record<string, string> = {}
    const pushes = fixture.pushes as FixturePush[]
    for (const push of pushes) {
      const outcome = await pushAt(push.at, window, fixture.config.quota)
      verdicts[push.tag] = outcome.verdict
      if (push.tag === 'v3') expect(outcome.status.nextSlotAt).toBe('2024-03-11T23:50:00.000Z')
    }

    for (const push of pushes) {
      const want = expected(push.expect_rolling ?? push.expect)
      if (want)
        expect({ tag: push.tag, verdict: verdicts[push.tag] }).toEqual({
          tag: push.tag,
          verdict: want,
        })
    }
    // v6, three weeks later, finds an empty window (the fixture states no expectation).
    expect(verdicts.v6).toBe('accepted')
  })

  it('follows the fixture with a calendar day in UTC (v4 corrected, see below)', async () => {
    const window = parseWindow({ period: 'day', timeZone: 'UTC' })
    const verdicts: Record<string, string> = {}
    const pushes = fixture.pushes as FixturePush[]
    for (const push of pushes) {
      const outcome = await pushAt(push.at, window, fixture.config.quota)
      verdicts[push.tag] = outcome.verdict
      if (push.tag === 'v5') expect(outcome.status.nextSlotAt).toBe('2024-03-12T00:00:00.000Z')
    }

    // The fixture expects v4 refused, which its own quota of 2 contradicts: v1 and v2 fall
    // on 03-10 (UTC), so on 03-11 only v3 is charged before v4, which takes the second
    // unit. The third push of 03-11, v5, is the one refused.
    expect(expected(fixture.pushes[3]?.expect_calendar_utc)).toBe('over quota')
    expect(verdicts).toEqual({
      v1: 'accepted',
      v2: 'accepted',
      v3: expected(fixture.pushes[2]?.expect_calendar_utc),
      v4: 'accepted',
      v5: 'over quota',
      v6: 'accepted',
    })
  })

  it('counts a 23 h day in Europe/Zurich on 2024-03-31 once, skipping nothing', async () => {
    const zurich = parseWindow({ period: 'day', timeZone: 'Europe/Zurich' })
    const push = (at: string) => pushAt(at, zurich, 2)

    expect((await push('2024-03-30T22:59:59Z')).verdict).toBe('accepted') // Sat 23:59:59 CET
    expect((await push('2024-03-30T23:00:00Z')).verdict).toBe('accepted') // Sun 00:00 CET
    expect((await push('2024-03-31T00:30:00Z')).verdict).toBe('accepted') // fixture v6
    const refused = await push('2024-03-31T21:59:59Z') // Sun 23:59:59 CEST
    expect(refused.verdict).toBe('over quota')
    expect(refused.status.nextSlotAt).toBe('2024-03-31T22:00:00.000Z')
    expect((await push('2024-03-31T22:00:00Z')).verdict).toBe('accepted') // Mon 00:00 CEST
  })

  it('counts a 25 h day in Europe/Zurich on 2024-10-27, repeated hour included', async () => {
    const zurich = parseWindow({ period: 'day', timeZone: 'Europe/Zurich' })
    const push = (at: string) => pushAt(at, zurich, 2)

    expect((await push('2024-10-26T22:00:00Z')).verdict).toBe('accepted') // Sun 00:00 CEST
    expect((await push('2024-10-27T00:30:00Z')).verdict).toBe('accepted') // 02:30 CEST
    expect((await push('2024-10-27T01:30:00Z')).verdict).toBe('over quota') // 02:30 CET
    const late = await push('2024-10-27T22:59:59Z') // Sun 23:59:59 CET, 25 h after the start
    expect(late.verdict).toBe('over quota')
    expect(late.status.nextSlotAt).toBe('2024-10-27T23:00:00.000Z')
    expect((await push('2024-10-27T23:00:00Z')).verdict).toBe('accepted')
  })

  it('counts a calendar week from Monday 00:00 local, with its DST change inside', async () => {
    const week = parseWindow({ period: 'week', timeZone: 'Europe/Zurich' })
    const push = (at: string) => pushAt(at, week, 1)

    expect((await push('2024-03-24T22:59:59Z')).verdict).toBe('accepted') // Sun 23:59:59, week 12
    expect((await push('2024-03-24T23:00:00Z')).verdict).toBe('accepted') // Mon 00:00, week 13
    const sunday = await push('2024-03-31T21:59:59Z') // Sun 23:59:59 CEST, still week 13
    expect(sunday.verdict).toBe('over quota')
    expect(sunday.status.nextSlotAt).toBe('2024-03-31T22:00:00.000Z')
    expect((await push('2024-03-31T22:00:00Z')).verdict).toBe('accepted') // Mon 00:00 CEST
  })

  it('counts each subject and challenge apart', async () => {
    const window = parseWindow({ window: '24h' })

    expect((await pushAt('2024-03-10T10:00:00Z', window, 1, 'alice')).verdict).toBe('accepted')
    expect((await pushAt('2024-03-10T10:00:01Z', window, 1, 'team:owls')).verdict).toBe('accepted')
    expect((await pushAt('2024-03-10T10:00:02Z', window, 1, 'alice')).verdict).toBe('over quota')
    ctx.clock.set('2024-03-10T10:00:03Z')
    const other = await pushTag(ctx, { window, limit: 1, subject: 'alice', challengeId: 'wine' })
    expect(other.accepted).toBe(true)
  })
})
