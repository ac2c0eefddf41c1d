import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { JOB_PRIORITY } from '../../src/queue/job-queue.ts'
import { requeueSubmission, type RequeueContext } from '../../src/queue/requeue.ts'
import { moveSubmission } from '../../src/submissions/transitions.ts'
import { reapExpiredJobs } from '../../src/worker/reaper.ts'
import {
  acceptedSubmission,
  chargeRow,
  insertSubmission,
  jobRow,
  submissionRow,
  testContext,
  type TestContext,
} from './support/builders.ts'
import { testCatalog, testChallenge, testConfig } from './support/challenges.ts'
import { STORE_FACTORIES } from './support/stores.ts'

const CLAIM = { workerId: 'w1', queues: ['iris'], capabilities: [], leaseMs: 60_000 }
const BY = { actor: 'organizer:ada', reason: 'quota raised for this participant' }

describe.each(STORE_FACTORIES)('re-queueing a submission on $dialect', (factory) => {
  let ctx: TestContext & RequeueContext

  beforeEach(async (context) => {
    const base = testContext(await factory.open(context.task.name))
    const challenge = testChallenge({ quota: { limit: 1, inFlight: 2 } })
    ctx = { ...base, config: testConfig(), challenges: testCatalog(challenge) }
  })
  afterEach(async () => {
    await ctx.store.close()
  })

  /** What intake leaves for a push over quota: failed, never charged, no evaluation or job. */
  async function overQuota(): Promise<number> {
    const id = await insertSubmission(ctx.store.db, ctx.clock.now(), { subject: 'bob' })
    await moveSubmission(ctx.store.db, id, {
      to: 'failed',
      reasonCode: 'quota_exceeded',
      message: 'over quota: 1 of 1 submissions used in the 24 h window',
      actor: 'proctor',
      at: ctx.clock.now(),
    })
    return id
  }

  it('runs a quota_exceeded submission again only when an organizer asks, and records it', async () => {
    const id = await overQuota()
    ctx.clock.advance(25 * 3_600_000)
    await reapExpiredJobs(ctx)
    expect(await ctx.queue.claim(CLAIM)).toBeNull()

    const result = await requeueSubmission(ctx, id, BY)

    expect(result).toMatchObject({
      submissionId: id,
      from: 'failed',
      attempt: 2,
      evaluationNumber: 1,
      priority: JOB_PRIORITY.submission,
    })
    const submission = await submissionRow(ctx.store.db, id)
    expect(submission).toMatchObject({ state: 'queued', reason_code: null, attempt: 2 })
    expect(submission.status_detail).toBe(
      're-queued by organizer:ada: quota raised for this participant (evaluation #1, attempt 2)',
    )
    // The snapshot is stored as intake stores it: the definition, the data hash, the graders.
    const definition = JSON.parse(submission.challenge_snapshot_json ?? '{}') as { id?: string }
    expect(definition.id).toBe('iris')
    expect(submission.data_hash).toMatch(/^sha256:[0-9a-f]{64}$/)
    const event = await ctx.store.db
      .selectFrom('submission_events')
      .selectAll()
      .where('submission_id', '=', id)
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow()
    expect(event).toMatchObject({ state: 'queued', actor: 'organizer:ada' })
    expect(await jobRow(ctx.store.db, result.jobId)).toMatchObject({
      kind: 'evaluate',
      queue: 'iris',
      fairness_key: 'bob',
      in_flight_cap: 2,
      evaluation_id: result.evaluationId,
      state: 'waiting',
    })
    expect(await chargeRow(ctx.store.db, id)).toBeUndefined()
    expect(await ctx.queue.claim(CLAIM)).toMatchObject({ id: result.jobId, submissionId: id })
  })

  it('re-runs a scored submission as a new evaluation behind new submissions', async () => {
    const { submissionId, jobId, evaluationId } = await acceptedSubmission(ctx, {
      subject: 'alice',
    })
    const job = await ctx.queue.claim(CLAIM)
    if (!job) throw new Error('expected a job')
    await ctx.queue.withLease(job, async (trx) => {
      await moveSubmission(trx, submissionId, {
        to: 'evaluating',
        message: 'x',
        actor: 'w',
        at: ctx.clock.now(),
      })
      await moveSubmission(trx, submissionId, {
        to: 'scored',
        message: 'scored 0.9',
        actor: 'w',
        at: ctx.clock.now(),
        set: { score: 0.9 },
      })
      await trx
        .updateTable('evaluations')
        .set({ state: 'scored', score: 0.9, finished_at: ctx.clock.now().toISOString() })
        .where('id', '=', evaluationId)
        .execute()
      await ctx.queue.complete(trx, job)
    })

    const rerun = await requeueSubmission(ctx, submissionId, { ...BY, reason: 'grader fixed' })
    const fresh = await acceptedSubmission(ctx, { subject: 'carol' })

    expect(rerun).toMatchObject({ evaluationNumber: 2, priority: JOB_PRIORITY.rerun, attempt: 2 })
    expect(await submissionRow(ctx.store.db, submissionId)).toMatchObject({
      state: 'queued',
      score: null,
    })
    const evaluations = await ctx.store.db
      .selectFrom('evaluations')
      .select(['number', 'kind', 'state', 'score'])
      .where('submission_id', '=', submissionId)
      .orderBy('number')
      .execute()
    expect(evaluations).toEqual([
      { number: 1, kind: 'first', state: 'scored', score: 0.9 },
      { number: 2, kind: 'rerun', state: 'queued', score: null },
    ])
    expect(await jobRow(ctx.store.db, jobId)).toMatchObject({ state: 'done' })
    expect((await ctx.queue.claim(CLAIM))?.id).toBe(fresh.jobId)
    expect((await ctx.queue.claim(CLAIM))?.id).toBe(rerun.jobId)
  })

  it('refuses a submission that has not ended, and a rejected one', async () => {
    const { submissionId } = await acceptedSubmission(ctx)
    const rejected = await insertSubmission(ctx.store.db, ctx.clock.now())
    await moveSubmission(ctx.store.db, rejected, {
      to: 'rejected',
      reasonCode: 'manifest_missing',
      message: 'no crowdai.json',
      actor: 'proctor',
      at: ctx.clock.now(),
    })

    await expect(requeueSubmission(ctx, submissionId, BY)).rejects.toMatchObject({
      code: 'not_requeueable',
      status: 409,
    })
    await expect(requeueSubmission(ctx, rejected, BY)).rejects.toMatchObject({ status: 409 })
    const jobs = await ctx.store.db.selectFrom('jobs').select('id').execute()
    expect(jobs).toHaveLength(1)
  })
})
