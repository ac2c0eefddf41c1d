import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { REASONS, type ReasonCode } from '../../src/domain/reasons.ts'
import { quotaStatus, refundCharge } from '../../src/quota/charges.ts'
import { parseWindow } from '../../src/quota/window.ts'
import { moveSubmission } from '../../src/submissions/transitions.ts'
import {
  acceptedSubmission,
  chargeRow,
  testContext,
  type TestContext,
} from '../queue/support/builders.ts'
import { STORE_FACTORIES } from '../queue/support/stores.ts'

const WINDOW = parseWindow({ window: '24h' })
const SCOPE = { challengeId: 'iris', roundId: null, subject: 'alice', debug: false }

/**
 * A unit is charged when a submission is accepted into the queue. A failure the participant
 * caused keeps it; one proctor, its infrastructure or an organizer caused refunds it, in the
 * same transaction as the failure, with the reason and time recorded.
 */
describe.each(STORE_FACTORIES)('quota refunds on $dialect', (factory) => {
  let ctx: TestContext

  beforeEach(async (context) => {
    ctx = testContext(await factory.open(context.task.name))
  })
  afterEach(async () => {
    await ctx.store.close()
  })

  async function failWith(submissionId: number, reasonCode: ReasonCode): Promise<void> {
    await moveSubmission(ctx.store.db, submissionId, {
      to: 'failed',
      reasonCode,
      message: `failed: ${reasonCode}`,
      actor: 'worker:w1',
      at: ctx.clock.now(),
    })
  }

  it('refunds an infrastructure failure and frees the unit at once', async () => {
    const { submissionId } = await acceptedSubmission(ctx)
    expect((await quotaStatus(ctx.store.db, SCOPE, WINDOW, 1, ctx.clock.now())).remaining).toBe(0)
    ctx.clock.advance(60_000)

    await failWith(submissionId, 'infrastructure')

    expect(await chargeRow(ctx.store.db, submissionId)).toMatchObject({
      refunded_at: '2026-01-01T00:01:00.000Z',
      refund_reason: 'infrastructure',
    })
    const status = await quotaStatus(ctx.store.db, SCOPE, WINDOW, 1, ctx.clock.now())
    expect(status).toMatchObject({ used: 0, remaining: 1, nextSlotAt: '2026-01-01T00:01:00.000Z' })
  })

  it('keeps the unit for a failure the participant caused', async () => {
    const { submissionId } = await acceptedSubmission(ctx)

    await failWith(submissionId, 'build_failed')

    expect(await chargeRow(ctx.store.db, submissionId)).toMatchObject({ refunded_at: null })
    const status = await quotaStatus(ctx.store.db, SCOPE, WINDOW, 1, ctx.clock.now())
    expect(status).toMatchObject({ used: 1, remaining: 0, nextSlotAt: '2026-01-02T00:00:00.000Z' })
  })

  it('follows the reason list for every reason a charged submission can fail with', async () => {
    const charged = (Object.keys(REASONS) as ReasonCode[]).filter(
      (code) => REASONS[code].charge !== 'never',
    )
    const outcomes: Record<string, boolean> = {}

    for (const code of charged) {
      const { submissionId } = await acceptedSubmission(ctx, { subject: `p-${code}` })
      await failWith(submissionId, code)
      outcomes[code] = (await chargeRow(ctx.store.db, submissionId))?.refunded_at !== null
    }

    const expected = Object.fromEntries(
      charged.map((code) => [code, REASONS[code].charge === 'refunded']),
    )
    expect(outcomes).toEqual(expected)
    expect(Object.values(outcomes).filter(Boolean).length).toBeGreaterThan(0)
  })

  it('refunds a unit once and keeps the first reason', async () => {
    const { submissionId } = await acceptedSubmission(ctx)

    expect(await refundCharge(ctx.store.db, submissionId, 'worker_lost', ctx.clock.now())).toBe(
      true,
    )
    ctx.clock.advance(1_000)
    expect(await refundCharge(ctx.store.db, submissionId, 'cancelled', ctx.clock.now())).toBe(false)

    expect(await chargeRow(ctx.store.db, submissionId)).toMatchObject({
      refund_reason: 'worker_lost',
      refunded_at: '2026-01-01T00:00:00.000Z',
    })
  })

  it('refunds nothing for a submission that was never charged', async () => {
    expect(await refundCharge(ctx.store.db, 12_345, 'infrastructure', ctx.clock.now())).toBe(false)
  })
})
