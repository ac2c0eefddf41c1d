import { checkAndCharge, type QuotaStatus } from '../../../src/quota/charges.ts'
import type { QuotaWindow } from '../../../src/quota/window.ts'
import { moveSubmission } from '../../../src/submissions/transitions.ts'
import {
  insertEvaluation,
  insertSubmission,
  type TestContext,
} from '../../queue/support/builders.ts'

export interface PushOutcome {
  submissionId: number
  accepted: boolean
  jobId: number | null
  status: QuotaStatus
}

/**
 * The last step of intake for one tag push, as src/intake/charge.ts does it: in one
 * transaction, check and charge the quota, then either add evaluation #1 and its job and
 * queue the submission, or fail it `quota_exceeded` naming the next free slot.
 */
export async function pushTag(
  ctx: TestContext,
  quota: { window: QuotaWindow; limit: number; subject: string; challengeId?: string },
): Promise<PushOutcome> {
  const now = ctx.clock.now()
  const challengeId = quota.challengeId ?? 'iris'
  const submissionId = await insertSubmission(ctx.store.db, now, {
    subject: quota.subject,
    challengeId,
  })

  return ctx.store.db.transaction().execute(async (trx) => {
    const charge = await checkAndCharge(trx, {
      scope: { challengeId, roundId: null, subject: quota.subject, debug: false },
      window: quota.window,
      limit: quota.limit,
      submissionId,
      now,
      dialect: ctx.store.dialect,
    })
    if (!charge.charged) {
      await moveSubmission(trx, submissionId, {
        to: 'failed',
        reasonCode: 'quota_exceeded',
        message: `over quota: ${charge.status.used} of ${quota.limit} used; next free slot ${charge.status.nextSlotAt ?? 'never'}`,
        actor: 'proctor',
        at: now,
      })
      return { submissionId, accepted: false, jobId: null, status: charge.status }
    }

    const evaluationId = await insertEvaluation(trx, submissionId, now)
    const jobId = await ctx.queue.enqueue(trx, {
      kind: 'evaluate',
      queue: challengeId,
      submissionId,
      evaluationId,
      fairnessKey: quota.subject,
      maxAttempts: 3,
    })
    await moveSubmission(trx, submissionId, {
      to: 'queued',
      message: 'queued',
      actor: 'proctor',
      at: now,
    })
    return { submissionId, accepted: true, jobId, status: charge.status }
  })
}
