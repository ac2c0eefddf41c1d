import type { Kysely } from 'kysely'

import type { SubmissionState } from '../domain/states.ts'
import type { Executor } from '../store/transaction.ts'
import { reportingDb, type ReportingDatabase } from './tables.ts'
import type { OutboxPayload } from './target.ts'

/** One change of a submission, as the transaction that makes it describes it. */
export interface OutgoingChange {
  readonly submissionId: number
  readonly event: 'state' | 'progress'
  readonly state: SubmissionState
  readonly previousState: SubmissionState | null
  readonly reasonCode: string | null
  readonly message: string
  readonly at: Date
  readonly evaluationId?: number | null
  readonly progress?: number | null
  /** The result to report when it is not the submission's own (a published re-run). */
  readonly result?: { score: number | null; scoreSecondary: number | null }
}

/**
 * Writes the outbox rows for one change, one per route that wants it, in the caller's
 * transaction: the change and the promise to report it commit together or not at all.
 * Reads the submission row as the transaction sees it (after the change), so the score and
 * status written with the move are in the message.
 *
 * Routes (outbox_routes, copied from configuration by the dispatching process):
 * - `platform` routes get changes of submissions announced to the platform (those with a
 *   platform id): a rejected submission, or one the platform refused, was never announced;
 * - `forge` routes get every change of the submissions from that forge (rejections too).
 * Changes made for a re-run nobody has published go nowhere (see docs/reporting.md).
 *
 * Returns the number of rows written.
 */
export async function recordOutgoing(db: Executor, change: OutgoingChange): Promise<number> {
  const rdb = reportingDb(db)
  const routes = await rdb.selectFrom('outbox_routes').selectAll().orderBy('target').execute()
  if (routes.length === 0) return 0

  const submission = await rdb
    .selectFrom('submissions')
    .select([
      'id',
      'forge',
      'platform_submission_id',
      'score',
      'score_secondary',
      'stage',
      'attempt',
    ])
    .where('id', '=', change.submissionId)
    .executeTakeFirst()
  if (!submission) return 0
  if (await isUnpublishedRerun(rdb, change.submissionId, change.evaluationId ?? null)) return 0

  const targets = routes
    .filter((route) =>
      route.audience === 'forge'
        ? route.forge === submission.forge
        : submission.platform_submission_id !== null,
    )
    .map((route) => route.target)
  const payload: OutboxPayload = {
    v: 1,
    event: change.event,
    state: change.state,
    previousState: change.previousState,
    reasonCode: change.reasonCode,
    message: change.message,
    score: change.result ? change.result.score : submission.score,
    scoreSecondary: change.result ? change.result.scoreSecondary : submission.score_secondary,
    stage: submission.stage,
    progress: change.progress ?? progressOf(change.state),
    attempt: Number(submission.attempt),
    evaluationId: change.evaluationId ?? null,
    at: change.at.toISOString(),
  }
  await insertMessages(rdb, targets, change.submissionId, payload, change.at)
  return targets.length
}

/**
 * Writes an `announced` message for each of `targets` that has none for this submission
 * yet, so a repeated announcement (an intake job retried after a crash) sends nothing twice.
 */
export async function recordAnnouncement(
  db: Executor,
  targets: readonly string[],
  submission: { id: number; state: SubmissionState },
  at: Date,
): Promise<number> {
  const rdb = reportingDb(db)
  const existing = await rdb
    .selectFrom('outbox')
    .select('target')
    .where('submission_id', '=', submission.id)
    .where('event', '=', 'announced')
    .execute()
  const have = new Set(existing.map((row) => row.target))
  const missing = targets.filter((target) => !have.has(target))
  const payload: OutboxPayload = {
    v: 1,
    event: 'announced',
    state: submission.state,
    previousState: null,
    reasonCode: null,
    message: 'submission received',
    score: null,
    scoreSecondary: null,
    stage: null,
    progress: 0,
    attempt: 1,
    evaluationId: null,
    at: at.toISOString(),
  }
  await insertMessages(rdb, missing, submission.id, payload, at)
  return missing.length
}

/**
 * Reports a re-run's result, once an organizer has published it: call in the transaction
 * that sets `evaluations.published = 1`. The platform gets the re-run's score (crowdAI: a
 * `graded` PATCH of the same platform submission). Returns the rows written; 0 for an
 * evaluation that is not a finished, published re-run.
 */
export async function recordPublishedRerun(
  db: Executor,
  evaluationId: number,
  at: Date,
): Promise<number> {
  const evaluation = await db
    .selectFrom('evaluations')
    .select([
      'submission_id',
      'number',
      'kind',
      'state',
      'published',
      'score',
      'score_secondary',
      'reason_code',
      'reason_message',
    ])
    .where('id', '=', evaluationId)
    .executeTakeFirst()
  if (!evaluation || evaluation.kind !== 'rerun' || !evaluation.published) return 0
  if (evaluation.state !== 'scored' && evaluation.state !== 'failed') return 0

  const scored = evaluation.state === 'scored'
  return recordOutgoing(db, {
    submissionId: Number(evaluation.submission_id),
    event: 'state',
    state: scored ? 'scored' : 'failed',
    previousState: null,
    reasonCode: scored ? null : evaluation.reason_code,
    message: scored
      ? `re-run ${evaluation.number}: scored ${evaluation.score ?? ''}`
      : `re-run ${evaluation.number} failed: ${evaluation.reason_message ?? evaluation.reason_code ?? 'no reason given'}`,
    at,
    evaluationId,
    result: { score: evaluation.score, scoreSecondary: evaluation.score_secondary },
  })
}

/** A rough share of the way to a result, for platforms that show progress. */
export function progressOf(state: SubmissionState): number | null {
  switch (state) {
    case 'received':
    case 'queued':
      return 0
    case 'building':
      return 0.25
    case 'evaluating':
      return 0.5
    case 'scored':
    case 'failed':
    case 'rejected':
    case 'cancelled':
      return 1
  }
}

async function insertMessages(
  rdb: Kysely<ReportingDatabase>,
  targets: readonly string[],
  submissionId: number,
  payload: OutboxPayload,
  at: Date,
): Promise<void> {
  if (targets.length === 0) return
  const now = at.toISOString()
  await rdb
    .insertInto('outbox')
    .values(
      targets.map((target) => ({
        target,
        submission_id: submissionId,
        event: payload.event,
        payload_json: JSON.stringify(payload),
        state: 'pending' as const,
        attempts: 0,
        next_attempt_at: now,
        created_at: now,
      })),
    )
    .execute()
}

/**
 * True when the change belongs to a re-run an organizer has not published: the evaluation
 * named, or else the submission's latest one. A first evaluation is always published.
 */
async function isUnpublishedRerun(
  rdb: Kysely<ReportingDatabase>,
  submissionId: number,
  evaluationId: number | null,
): Promise<boolean> {
  let query = rdb
    .selectFrom('evaluations')
    .select(['kind', 'published'])
    .where('submission_id', '=', submissionId)
  query =
    evaluationId === null
      ? query.orderBy('number', 'desc').limit(1)
      : query.where('id', '=', evaluationId)
  const evaluation = await query.executeTakeFirst()
  return evaluation?.kind === 'rerun' && !evaluation.published
}
