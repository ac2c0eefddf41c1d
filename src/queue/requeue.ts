import type { Transaction } from 'kysely'

import type { AppContext } from '../app/context.ts'
import type { ChallengeSnapshot } from '../challenges/catalog.ts'
import type { ChallengeDefinition } from '../config/challenge.ts'
import { BadRequestError } from '../domain/errors.ts'
import { canMove, isTerminal, type SubmissionState } from '../domain/states.ts'
import { quotaPolicy } from '../quota/policy.ts'
import type { Database, Submission } from '../store/schema.ts'
import { parseJson } from '../store/transaction.ts'
import { moveSubmission } from '../submissions/transitions.ts'
import { JOB_PRIORITY, type EnqueueOptions } from './job-queue.ts'

export type RequeueContext = Pick<AppContext, 'store' | 'clock' | 'queue' | 'config' | 'challenges'>

export interface RequeueOptions {
  /** Who re-queues, as recorded: `organizer:<name>` or `operator:<name>`. */
  actor: string
  /** Why, in words shown on the submission's timeline. */
  reason: string
  /** Overrides the priority (default: a re-run's if it was evaluated before, else normal). */
  priority?: number
}

export interface RequeueResult {
  submissionId: number
  from: SubmissionState
  attempt: number
  evaluationId: number
  evaluationNumber: number
  jobId: number
  priority: number
}

/**
 * An organizer's explicit re-queue: the only way a submission leaves a terminal state
 * (scored, failed, cancelled; a rejected one was never valid). In one transaction it adds
 * a new evaluation (#1 if the submission never had one, as after `quota_exceeded`; else the
 * next number, kind `rerun`), enqueues its evaluate job, raises the attempt and records who
 * and why. Earlier evaluations are never reused or changed.
 *
 * Quota: a re-queue is the organizer's decision, so it is neither checked nor charged; a
 * unit charged before stays as it was (kept or refunded).
 *
 * Priority: a submission evaluated before (scored, or failed after running) re-runs behind
 * new submissions; one that never ran (over quota, cancelled while waiting) queues as new.
 *
 *   await requeueSubmission(ctx, 42, { actor: 'organizer:ada', reason: 'quota raised for round 2' })
 */
export async function requeueSubmission(
  ctx: RequeueContext,
  submissionId: number,
  options: RequeueOptions,
): Promise<RequeueResult> {
  const submission = await ctx.store.db
    .selectFrom('submissions')
    .selectAll()
    .where('id', '=', submissionId)
    .executeTakeFirst()
  if (!submission) {
    throw new BadRequestError(`there is no submission ${submissionId}`, 404, 'not_found')
  }
  assertRequeueable(submission)
  // A submission keeps the snapshot it was accepted with, so a re-run is exact; one that
  // never got that far (over quota) takes the challenge as it is now. Before the
  // transaction: a snapshot may hash data or build images.
  const snapshot =
    submission.challenge_snapshot_json === null
      ? await ctx.challenges.snapshot(submission.challenge_id ?? '')
      : null

  const result = await ctx.store.db.transaction().execute(async (trx) => {
    const now = ctx.clock.now()
    const evaluations = await trx
      .selectFrom('evaluations')
      .select(['number', 'state', 'finished_at'])
      .where('submission_id', '=', submissionId)
      .execute()
    const number = Math.max(0, ...evaluations.map((e) => e.number)) + 1
    const evaluatedBefore = evaluations.some(
      (e) => e.finished_at !== null && (e.state === 'scored' || e.state === 'failed'),
    )
    const priority =
      options.priority ?? (evaluatedBefore ? JOB_PRIORITY.rerun : JOB_PRIORITY.submission)

    const evaluation = await trx
      .insertInto('evaluations')
      .values({
        submission_id: submissionId,
        number,
        kind: number === 1 ? 'first' : 'rerun',
        state: 'queued',
        created_at: now.toISOString(),
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const evaluationId = Number(evaluation.id)

    const definition = snapshot?.definition ?? recordedDefinition(submission)
    const jobOptions = await evaluateJobOptions(ctx, trx, submission, definition)
    const jobId = await ctx.queue.enqueue(trx, { ...jobOptions, priority, evaluationId })

    const attempt = submission.attempt + 1
    await moveSubmission(trx, submissionId, {
      to: 'queued',
      from: [submission.state],
      message: `re-queued by ${options.actor}: ${options.reason} (evaluation #${number}, attempt ${attempt})`,
      actor: options.actor,
      at: now,
      evaluationId,
      set: {
        attempt,
        stage: null,
        score: null,
        score_secondary: null,
        score_details_json: null,
        ...(snapshot
          ? {
              challenge_snapshot_json: JSON.stringify(snapshot.definition),
              data_hash: snapshot.dataHash,
              grader_image: JSON.stringify(snapshot.graderImages),
            }
          : {}),
      },
    })
    return {
      submissionId,
      from: submission.state,
      attempt,
      evaluationId,
      evaluationNumber: number,
      jobId,
      priority,
    }
  })

  ctx.queue.wake()
  return result
}

function assertRequeueable(submission: Submission): void {
  const { id, state } = submission
  if (!isTerminal(state)) {
    throw new BadRequestError(
      `submission ${id} is ${state}: it has not ended; cancel it first to run it again`,
      409,
      'not_requeueable',
    )
  }
  if (!canMove(state, 'queued') || submission.challenge_id === null) {
    throw new BadRequestError(
      `submission ${id} was rejected (${submission.reason_code ?? 'no reason'}) and was never valid; ` +
        'the participant pushes a fixed tag instead',
      409,
      'not_requeueable',
    )
  }
}

/**
 * The evaluate job for a submission: as its last one was (queue, fairness key, capabilities,
 * attempts, in-flight cap), or, when it never had one, as intake makes it.
 */
async function evaluateJobOptions(
  ctx: RequeueContext,
  trx: Transaction<Database>,
  submission: Submission,
  definition: ChallengeDefinition | null,
): Promise<Omit<EnqueueOptions, 'priority' | 'evaluationId'>> {
  const previous = await trx
    .selectFrom('jobs')
    .selectAll()
    .where('submission_id', '=', submission.id)
    .where('kind', '=', 'evaluate')
    .orderBy('id', 'desc')
    .executeTakeFirst()
  if (previous) {
    return {
      kind: 'evaluate',
      queue: previous.queue,
      submissionId: submission.id,
      fairnessKey: previous.fairness_key,
      capabilities: parseJson<string[]>(previous.capabilities_json, []),
      maxAttempts: previous.max_attempts,
      inFlightCap: previous.in_flight_cap,
    }
  }

  const policy = definition
    ? quotaPolicy(definition, { roundId: submission.round_id, debug: submission.debug === 1 })
    : null
  return {
    kind: 'evaluate',
    queue: submission.challenge_id ?? '',
    submissionId: submission.id,
    fairnessKey: submission.quota_subject ?? submission.pusher_username,
    capabilities: definition?.phases.some((p) => p.gpus > 0) ? ['gpu'] : [],
    maxAttempts: ctx.config.worker.maxAttempts,
    inFlightCap: policy?.inFlight ?? null,
  }
}

/** The definition recorded on the submission, whichever form it was stored in. */
function recordedDefinition(submission: Submission): ChallengeDefinition | null {
  const recorded = parseJson<Partial<ChallengeSnapshot> & Partial<ChallengeDefinition>>(
    submission.challenge_snapshot_json,
    {},
  )
  if (recorded.definition) return recorded.definition
  return recorded.phases ? (recorded as ChallengeDefinition) : null
}
