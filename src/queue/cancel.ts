import type { AppContext } from '../app/context.ts'
import { BadRequestError } from '../domain/errors.ts'
import { canMove, type SubmissionState } from '../domain/states.ts'
import { moveSubmission } from '../submissions/transitions.ts'

export type CancelContext = Pick<AppContext, 'store' | 'clock' | 'queue'>

export interface CancelOptions {
  /** Who cancels, as recorded: `organizer:<name>`, `operator:<name>`, `participant:<name>`. */
  actor: string
  /** Why, in words shown on the submission's timeline. */
  reason: string
}

export interface CancelResult {
  submissionId: number
  from: SubmissionState
  /** The jobs stopped, with the state each was in. */
  jobs: { id: number; was: 'waiting' | 'running' }[]
  /** Whether a charged quota unit was given back (cancellations are always refunded). */
  refunded: boolean
}

/**
 * Cancels a submission that has not ended, in one transaction:
 * - a waiting job never starts (the job fails with the reason);
 * - a running job loses its lease: the worker's next heartbeat or write is refused, its
 *   job signal aborts and its containers are stopped;
 * - its open evaluation ends `cancelled`; the submission moves to `cancelled` with who and
 *   when; its quota unit is refunded (REASONS.cancelled).
 *
 *   await cancelSubmission(ctx, 42, { actor: 'organizer:ada', reason: 'duplicate of #41' })
 *
 * Refuses (409) a submission that has already ended; re-queue it instead.
 */
export async function cancelSubmission(
  ctx: CancelContext,
  submissionId: number,
  options: CancelOptions,
): Promise<CancelResult> {
  const result = await ctx.store.db.transaction().execute(async (trx) => {
    const submission = await trx
      .selectFrom('submissions')
      .select(['id', 'state'])
      .where('id', '=', submissionId)
      .executeTakeFirst()
    if (!submission) {
      throw new BadRequestError(`there is no submission ${submissionId}`, 404, 'not_found')
    }
    if (!canMove(submission.state, 'cancelled')) {
      throw new BadRequestError(
        `submission ${submissionId} is ${submission.state} and can no longer be cancelled; ` +
          're-queue it if it should run again',
        409,
        'not_cancellable',
      )
    }

    const now = ctx.clock.now()
    const jobs = await ctx.queue.cancelJobs(
      trx,
      submissionId,
      `cancelled by ${options.actor}: ${options.reason}`,
    )
    const evaluationIds = jobs.flatMap((job) =>
      job.evaluation_id === null ? [] : [job.evaluation_id],
    )
    if (evaluationIds.length > 0) {
      await trx
        .updateTable('evaluations')
        .set({
          state: 'cancelled',
          reason_code: 'cancelled',
          reason_message: options.reason,
          finished_at: now.toISOString(),
        })
        .where('id', 'in', evaluationIds)
        .where('finished_at', 'is', null)
        .execute()
    }

    const charge = await trx
      .selectFrom('quota_charges')
      .select('refunded_at')
      .where('submission_id', '=', submissionId)
      .executeTakeFirst()
    const refunded = charge !== undefined && charge.refunded_at === null
    await moveSubmission(trx, submissionId, {
      to: 'cancelled',
      from: [submission.state],
      reasonCode: 'cancelled',
      message:
        `cancelled by ${options.actor} at ${now.toISOString()}: ${options.reason}` +
        (refunded ? '; the quota unit was refunded' : ''),
      actor: options.actor,
      at: now,
      evaluationId: evaluationIds.at(-1) ?? null,
      set: { stage: null },
    })

    return {
      submissionId,
      from: submission.state,
      jobs: jobs.map((job) => ({ id: Number(job.id), was: job.state as 'waiting' | 'running' })),
      refunded,
    }
  })

  // A cancelled running job frees a slot under its key's in-flight cap.
  ctx.queue.wake()
  return result
}
