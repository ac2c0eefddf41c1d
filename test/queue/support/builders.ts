import pino from 'pino'

import { ManualClock } from '../../../src/domain/clock.ts'
import type { SubmissionState } from '../../../src/domain/states.ts'
import { JobQueue, type EnqueueOptions } from '../../../src/queue/job-queue.ts'
import type { Store } from '../../../src/store/database.ts'
import type { Executor } from '../../../src/store/transaction.ts'

export const silentLog = pino({ level: 'silent' })

export interface TestContext {
  store: Store
  clock: ManualClock
  queue: JobQueue
  log: typeof silentLog
}

export function testContext(store: Store, start = '2026-01-01T00:00:00Z'): TestContext {
  const clock = new ManualClock(start)
  return { store, clock, queue: new JobQueue(store, clock), log: silentLog }
}

let tags = 0

/** A submission row in any state, with only what the queue and quota code read. */
export async function insertSubmission(
  db: Executor,
  at: Date,
  overrides: {
    state?: SubmissionState
    challengeId?: string
    subject?: string
    reasonCode?: string | null
    debug?: boolean
  } = {},
): Promise<number> {
  const now = at.toISOString()
  const tag = `v${++tags}`
  const row = await db
    .insertInto('submissions')
    .values({
      event_id: tags,
      challenge_id: overrides.challengeId ?? 'iris',
      round_id: null,
      forge: 'gitlab',
      project_id: `p-${overrides.subject ?? 'alice'}`,
      project_path: `${overrides.subject ?? 'alice'}/iris`,
      tag,
      commit_sha: `${tags}`.padStart(40, '0'),
      participant_id: null,
      pusher_username: overrides.subject ?? 'alice',
      quota_subject: overrides.subject ?? 'alice',
      authors_json: '[]',
      manifest_extra_json: '{}',
      debug: overrides.debug ? 1 : 0,
      state: overrides.state ?? 'received',
      reason_code: overrides.reasonCode ?? null,
      status_detail: 'test',
      archive: 'pending',
      challenge_snapshot_json: null,
      created_at: now,
      updated_at: now,
      state_changed_at: now,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return Number(row.id)
}

export async function insertEvaluation(
  db: Executor,
  submissionId: number,
  at: Date,
): Promise<number> {
  const row = await db
    .insertInto('evaluations')
    .values({
      submission_id: submissionId,
      number: 1,
      kind: 'first',
      state: 'queued',
      created_at: at.toISOString(),
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return Number(row.id)
}

/**
 * What intake leaves behind for an accepted push: a queued submission, its charge, its
 * first evaluation and its evaluate job.
 */
export async function acceptedSubmission(
  ctx: TestContext,
  options: { subject?: string; challengeId?: string; job?: Partial<EnqueueOptions> } = {},
): Promise<{ submissionId: number; evaluationId: number; jobId: number }> {
  const at = ctx.clock.now()
  const challengeId = options.challengeId ?? 'iris'
  const subject = options.subject ?? 'alice'
  return ctx.store.db.transaction().execute(async (trx) => {
    const submissionId = await insertSubmission(trx, at, { state: 'queued', challengeId, subject })
    await trx
      .insertInto('quota_charges')
      .values({
        challenge_id: challengeId,
        round_id: null,
        subject,
        submission_id: submissionId,
        charged_at: at.toISOString(),
      })
      .execute()
    const evaluationId = await insertEvaluation(trx, submissionId, at)
    const jobId = await ctx.queue.enqueue(trx, {
      kind: 'evaluate',
      queue: challengeId,
      submissionId,
      evaluationId,
      fairnessKey: subject,
      maxAttempts: 3,
      ...options.job,
    })
    return { submissionId, evaluationId, jobId }
  })
}

export async function submissionRow(db: Executor, id: number) {
  return db.selectFrom('submissions').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
}

export async function jobRow(db: Executor, id: number) {
  return db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
}

export async function chargeRow(db: Executor, submissionId: number) {
  return db
    .selectFrom('quota_charges')
    .selectAll()
    .where('submission_id', '=', submissionId)
    .executeTakeFirst()
}
