import type { AppContext } from '../app/context.ts'
import { BadRequestError } from '../domain/errors.ts'
import { recordPublishedRerun } from '../outbox/record.ts'
import { inTransaction } from '../store/transaction.ts'
import { appendTimeline } from '../submissions/timeline.ts'

export interface PublishedEvaluation {
  readonly evaluationId: number
  readonly submissionId: number
  readonly number: number
  /** True when it had been published before: nothing changed. */
  readonly alreadyPublished: boolean
  /** Outbox messages written to report the result (one per target that gets it). */
  readonly messages: number
}

/**
 * Publishes a finished re-run's result: an organizer's decision that it may reach the
 * platform and the forge (the outbox sends a re-run's changes only once this is set). Sets
 * `evaluations.published`, writes the outbox messages that report the result in the same
 * transaction, and records it on the submission's timeline.
 * Idempotent. A first evaluation is always published; a running re-run has nothing yet.
 *
 *   POST /api/evaluations/17/publish   → 200 {"evaluationId":17,"submissionId":42,"number":2,…}
 */
export async function publishEvaluation(
  ctx: AppContext,
  evaluationId: number,
  options: { actor: string },
): Promise<PublishedEvaluation> {
  return inTransaction(ctx.store.db, async (trx) => {
    const evaluation = await trx
      .selectFrom('evaluations')
      .select(['id', 'submission_id', 'number', 'kind', 'state', 'score', 'published'])
      .where('id', '=', evaluationId)
      .executeTakeFirst()
    if (!evaluation) throw new BadRequestError(`no evaluation ${evaluationId}`, 404, 'not_found')
    const base = {
      evaluationId,
      submissionId: Number(evaluation.submission_id),
      number: Number(evaluation.number),
    }
    if (evaluation.kind !== 'rerun') {
      throw new BadRequestError(
        `evaluation ${evaluationId} is a submission's first evaluation: it is always published`,
        409,
        'not_a_rerun',
      )
    }
    if (evaluation.state !== 'scored' && evaluation.state !== 'failed') {
      throw new BadRequestError(
        `re-run ${evaluationId} is ${evaluation.state}: publish it once it has a result`,
        409,
        'not_finished',
      )
    }
    if (Number(evaluation.published) === 1) return { ...base, alreadyPublished: true, messages: 0 }

    const now = ctx.clock.now()
    await trx
      .updateTable('evaluations')
      .set({ published: 1 })
      .where('id', '=', evaluationId)
      .execute()
    // The outbox sends the result to the platform and the forge, committed with the flag.
    const messages = await recordPublishedRerun(trx, evaluationId, now)
    const result = evaluation.state === 'scored' ? `score ${evaluation.score ?? '?'}` : 'failure'
    await appendTimeline(trx, {
      submissionId: base.submissionId,
      evaluationId,
      kind: 'note',
      message: `re-run ${evaluationId} (evaluation ${base.number}) published by ${options.actor}: its ${result} may now reach the platform`,
      actor: options.actor,
      at: now,
    })
    return { ...base, alreadyPublished: false, messages }
  })
}
