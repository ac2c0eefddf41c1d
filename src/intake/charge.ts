import type { AppContext } from '../app/context.ts'
import type { Challenge } from '../config/challenge.ts'
import { errorMessage, InfrastructureError } from '../domain/errors.ts'
import { checkAndCharge } from '../quota/charges.ts'
import { quotaPolicy } from '../quota/policy.ts'
import type { ClaimedJob } from '../queue/job-queue.ts'
import type { Submission } from '../store/schema.ts'
import { moveSubmission } from '../submissions/transitions.ts'
import { describeWindow, type OpenWindow } from './checks.ts'
import { markEventProcessed } from './intake-store.ts'
import { withLeaseGrouped } from './lease.ts'

export type ChargeOutcome = 'queued' | 'quota_exceeded' | 'already_moved'

/**
 * The last step of intake, in ONE transaction under the job's lease: check and charge the
 * quota; if charged, record the challenge snapshot, add evaluation #1 and its evaluate job
 * and move the submission to `queued`; if not, fail it `quota_exceeded`. The event is marked
 * processed and the intake job completed in the same transaction, so the charge and the job
 * commit together or not at all.
 *
 * The subject charged is the pusher's team (`team:<name>`) or username, never an author.
 */
export async function chargeAndQueue(
  ctx: AppContext,
  job: ClaimedJob,
  submission: Submission,
  challenge: Challenge,
  window: Extract<OpenWindow, { open: true }>,
  platformSubmissionId: string,
): Promise<ChargeOutcome> {
  const def = challenge.definition
  // Snapshots are computed once per challenge and process (hashing data, grader images):
  // before the transaction, so no database lock is held while it runs.
  let snapshot
  try {
    snapshot = await ctx.challenges.snapshot(def.id)
  } catch (err) {
    throw new InfrastructureError(`challenge ${def.id}: snapshot failed: ${errorMessage(err)}`, {
      cause: err,
    })
  }

  const debug = submission.debug === 1
  // A round with its own quota counts within the round; otherwise the challenge's quota
  // counts across rounds (docs/quotas.md).
  const policy = quotaPolicy(def, { roundId: window.roundId, debug })
  const subject = submission.quota_subject ?? submission.pusher_username ?? 'unknown'
  const gpu = def.phases.some((p) => p.gpus > 0)

  const outcome = await withLeaseGrouped(ctx, job, async (trx): Promise<ChargeOutcome> => {
    const now = ctx.clock.now()
    const current = await trx
      .selectFrom('submissions')
      .select('state')
      .where('id', '=', submission.id)
      .executeTakeFirstOrThrow()
    if (current.state !== 'received') {
      await markEventProcessed(trx, submission.event_id, submission.id, ctx.clock)
      await ctx.queue.complete(trx, job)
      return 'already_moved'
    }

    const charge = await checkAndCharge(trx, {
      scope: { challengeId: def.id, roundId: policy.roundId, subject, debug },
      window: policy.window,
      limit: policy.limit,
      submissionId: submission.id,
      now,
      dialect: ctx.store.dialect,
    })
    const kind = debug ? 'debug submissions' : 'submissions'

    if (charge.charged) {
      const at = now.toISOString()
      const evaluation = await trx
        .insertInto('evaluations')
        .values({
          submission_id: submission.id,
          number: 1,
          kind: 'first',
          state: 'queued',
          created_at: at,
        })
        .returning('id')
        .executeTakeFirstOrThrow()
      const evaluationId = Number(evaluation.id)
      await ctx.queue.enqueue(trx, {
        kind: 'evaluate',
        queue: def.id,
        submissionId: submission.id,
        evaluationId,
        fairnessKey: subject,
        capabilities: gpu ? ['gpu'] : [],
        maxAttempts: ctx.config.worker.maxAttempts,
        inFlightCap: policy.inFlight,
      })
      const { remaining, nextFreeAt } = charge.status
      await moveSubmission(trx, submission.id, {
        to: 'queued',
        from: ['received'],
        message: `queued; ${remaining} of ${policy.limit} ${kind} left in ${describeWindow(policy.window)}${nextFreeAt ? ` (the next slot frees at ${nextFreeAt})` : ''}`,
        actor: 'proctor',
        at: now,
        evaluationId,
        set: {
          platform_submission_id: platformSubmissionId,
          challenge_snapshot_json: JSON.stringify(snapshot.definition),
          data_hash: snapshot.dataHash,
          grader_image: JSON.stringify(snapshot.graderImages),
        },
      })
    } else {
      const { used, nextFreeAt } = charge.status
      const when = nextFreeAt
        ? `the next slot frees at ${nextFreeAt}`
        : 'this challenge allows none'
      await moveSubmission(trx, submission.id, {
        to: 'failed',
        from: ['received'],
        reasonCode: 'quota_exceeded',
        message: `over quota: ${used} of ${policy.limit} ${kind} used in ${describeWindow(policy.window)}; ${when}`,
        actor: 'proctor',
        at: now,
        set: { platform_submission_id: platformSubmissionId },
      })
    }

    await markEventProcessed(trx, submission.event_id, submission.id, ctx.clock)
    await ctx.queue.complete(trx, job)
    return charge.charged ? 'queued' : 'quota_exceeded'
  })

  if (outcome === 'queued') ctx.queue.wake()
  return outcome
}
