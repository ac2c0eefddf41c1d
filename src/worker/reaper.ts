import type { Transaction } from 'kysely'

import type { AppContext } from '../app/context.ts'
import { isReasonCode, REASONS, type ReasonCode } from '../domain/reasons.ts'
import { isTerminal } from '../domain/states.ts'
import type { Database, Job } from '../store/schema.ts'
import { moveSubmission } from '../submissions/transitions.ts'

export type ReaperContext = Pick<AppContext, 'clock' | 'log' | 'queue'>

/**
 * Puts back jobs whose worker vanished (lease expired) and fails those out of attempts or
 * past their stage deadline. A submission never stays `building` or `evaluating` after its
 * worker is gone: it goes back to `queued` with the reason and its place kept, or ends
 * `worker_lost` with its quota unit refunded, or ends with its deadline's reason.
 *
 * Only running jobs are looked at: a submission that ended (over quota, cancelled, failed)
 * has no running job and is never touched, however often this runs.
 */
export async function reapExpiredJobs(ctx: ReaperContext): Promise<number> {
  const now = ctx.clock.now()
  const expired = await ctx.queue.reap(async (trx, job, willRetry) => {
    ctx.log.warn(
      { jobId: job.id, workerId: job.worker_id, attempt: job.attempt, willRetry },
      'lease expired; the worker is gone',
    )
    if (job.submission_id === null || job.kind !== 'evaluate') return

    const state = (await loadSubmission(trx, job.submission_id))?.state
    if (state === undefined || isTerminal(state)) return
    if (willRetry && state === 'queued') return
    if (willRetry) {
      await moveSubmission(trx, job.submission_id, {
        to: 'queued',
        message: `the worker running it stopped answering (attempt ${job.attempt}); queued again with its place kept`,
        actor: 'proctor',
        at: now,
        evaluationId: job.evaluation_id,
        set: { attempt: job.attempt + 1, stage: null },
      })
      return
    }
    await endEvaluation(trx, job, 'worker_lost', now)
    await moveSubmission(trx, job.submission_id, {
      to: 'failed',
      reasonCode: 'worker_lost',
      message: `the workers running it stopped answering ${job.attempt} times; your quota unit was refunded`,
      actor: 'proctor',
      at: now,
      evaluationId: job.evaluation_id,
    })
  })

  const overdue = await ctx.queue.reapOverdue(async (trx, job) => {
    const reason: ReasonCode =
      job.deadline_reason !== null && isReasonCode(job.deadline_reason)
        ? job.deadline_reason
        : 'time_limit'
    ctx.log.warn(
      { jobId: job.id, workerId: job.worker_id, deadline: job.deadline_at, reason },
      'stage passed its deadline; failing the job',
    )
    if (job.submission_id === null || job.kind !== 'evaluate') return

    const submission = await loadSubmission(trx, job.submission_id)
    if (submission === undefined || isTerminal(submission.state)) return
    const refunded = REASONS[reason].charge === 'refunded' ? '; your quota unit was refunded' : ''
    await endEvaluation(trx, job, reason, now)
    await moveSubmission(trx, job.submission_id, {
      to: 'failed',
      reasonCode: reason,
      message: `stage ${submission.stage ?? '(unknown)'} was still running at its deadline ${job.deadline_at ?? ''}; it was stopped${refunded}`,
      actor: 'proctor',
      at: now,
      evaluationId: job.evaluation_id,
    })
  })

  if (expired + overdue > 0) ctx.queue.wake()
  return expired + overdue
}

function loadSubmission(trx: Transaction<Database>, submissionId: number) {
  return trx
    .selectFrom('submissions')
    .select(['state', 'stage'])
    .where('id', '=', submissionId)
    .executeTakeFirst()
}

/** Records the end on the evaluation the job ran, unless it already has one. */
async function endEvaluation(
  trx: Transaction<Database>,
  job: Job,
  reason: ReasonCode,
  at: Date,
): Promise<void> {
  if (job.evaluation_id === null) return
  await trx
    .updateTable('evaluations')
    .set({ state: 'failed', reason_code: reason, finished_at: at.toISOString() })
    .where('id', '=', job.evaluation_id)
    .where('finished_at', 'is', null)
    .execute()
}
