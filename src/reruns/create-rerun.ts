import type { AppContext } from '../app/context.ts'
import { BadRequestError } from '../domain/errors.ts'
import { JOB_PRIORITY } from '../queue/job-queue.ts'
import { inTransaction } from '../store/transaction.ts'
import { appendTimeline } from '../submissions/timeline.ts'

export interface RerunOptions {
  actor: string
  /** `recorded`: the rules stored with the submission (default); `current`: as loaded now. */
  rules?: 'recorded' | 'current'
}

export interface RerunCreated {
  submissionId: number
  evaluationId: number
  number: number
  jobId: number
}

/**
 * Asks for a new evaluation of an archived submission. It runs the image by digest and
 * never changes the submission's first result; its outcome is stored on the evaluation.
 */
export async function createRerun(
  ctx: AppContext,
  submissionId: number,
  options: RerunOptions,
): Promise<RerunCreated> {
  const created = await inTransaction(ctx.store.db, async (trx) => {
    const submission = await trx
      .selectFrom('submissions')
      .selectAll()
      .where('id', '=', submissionId)
      .executeTakeFirst()
    if (!submission) throw new BadRequestError(`no submission ${submissionId}`, 404, 'not_found')
    if (submission.archive !== 'archived' || !submission.image_digest) {
      throw new BadRequestError(
        `submission ${submissionId} cannot be re-run: its image is ${submission.archive === 'expired' ? 'expired (removed by the retention policy)' : `not archived (archive: ${submission.archive})`}`,
        409,
        'not_archived',
      )
    }
    if (!submission.challenge_id)
      throw new BadRequestError(`submission ${submissionId} has no challenge`, 409, 'no_challenge')

    const last = await trx
      .selectFrom('evaluations')
      .select((eb) => eb.fn.max('number').as('n'))
      .where('submission_id', '=', submissionId)
      .executeTakeFirst()
    const number = Number(last?.n ?? 0) + 1
    const now = ctx.clock.now()
    const evaluation = await trx
      .insertInto('evaluations')
      .values({
        submission_id: submissionId,
        number,
        kind: 'rerun',
        state: 'queued',
        rules: options.rules ?? 'recorded',
        requested_by: options.actor,
        created_at: now.toISOString(),
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const evaluationId = Number(evaluation.id)
    const jobId = await ctx.queue.enqueue(trx, {
      kind: 'evaluate',
      queue: submission.challenge_id,
      priority: JOB_PRIORITY.rerun,
      submissionId,
      evaluationId,
      fairnessKey: submission.quota_subject,
      maxAttempts: ctx.config.worker.maxAttempts,
    })
    await appendTimeline(trx, {
      submissionId,
      evaluationId,
      kind: 'note',
      message: `re-run requested (evaluation ${number}, ${options.rules ?? 'recorded'} rules) by ${options.actor}`,
      actor: options.actor,
      at: now,
    })
    return { submissionId, evaluationId, number, jobId }
  })
  ctx.queue.wake()
  return created
}

/** Re-runs every archived submission of a challenge in the given states (default: scored). */
export async function createChallengeRerun(
  ctx: AppContext,
  challengeId: string,
  options: RerunOptions & { states?: readonly ('scored' | 'failed')[] },
): Promise<RerunCreated[]> {
  const rows = await ctx.store.db
    .selectFrom('submissions')
    .select('id')
    .where('challenge_id', '=', challengeId)
    .where('state', 'in', [...(options.states ?? ['scored'])])
    .where('archive', '=', 'archived')
    .orderBy('id')
    .execute()
  const created: RerunCreated[] = []
  for (const row of rows) created.push(await createRerun(ctx, row.id, options))
  return created
}
