import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import type { ClaimedJob } from '../../src/queue/job-queue.ts'
import { moveSubmission } from '../../src/submissions/transitions.ts'
import { reapExpiredJobs } from '../../src/worker/reaper.ts'
import {
  acceptedSubmission,
  chargeRow,
  jobRow,
  submissionRow,
  testContext,
  type TestContext,
} from './support/builders.ts'
import { STORE_FACTORIES } from './support/stores.ts'

const LEASE_MS = 60_000

/** A running stage past its deadline is failed by the reaper, even while heartbeating. */
describe.each(STORE_FACTORIES)('stage deadlines on $dialect', (factory) => {
  let ctx: TestContext

  beforeEach(async (context) => {
    ctx = testContext(await factory.open(context.task.name))
  })
  afterEach(async () => {
    await ctx.store.close()
  })

  async function startStage(stage: string): Promise<ClaimedJob> {
    const job = await ctx.queue.claim({
      workerId: 'w1',
      queues: ['iris'],
      capabilities: [],
      leaseMs: LEASE_MS,
    })
    if (!job?.submissionId) throw new Error('expected an evaluate job')
    const submissionId = job.submissionId
    await ctx.queue.withLease(job, (trx) =>
      moveSubmission(trx, submissionId, {
        to: 'evaluating',
        message: `running ${stage}`,
        actor: 'worker:w1',
        at: ctx.clock.now(),
        set: { stage },
      }),
    )
    return job
  }

  /** Keeps the lease alive while time passes, as a live but stuck worker would. */
  async function heartbeatFor(job: ClaimedJob, ms: number): Promise<void> {
    for (let passed = 0; passed < ms; passed += 20_000) {
      ctx.clock.advance(20_000)
      await ctx.queue.heartbeat(job, LEASE_MS)
    }
  }

  it('fails a stage past its deadline with time_limit and keeps the unit', async () => {
    const { submissionId, jobId } = await acceptedSubmission(ctx)
    const job = await startStage('predict')
    await ctx.queue.withLease(job, (trx) =>
      ctx.queue.setDeadline(trx, job, new Date(ctx.clock.now().getTime() + 10 * 60_000)),
    )

    await heartbeatFor(job, 9 * 60_000)
    expect(await reapExpiredJobs(ctx)).toBe(0)
    await heartbeatFor(job, 2 * 60_000)
    expect(await reapExpiredJobs(ctx)).toBe(1)

    expect(await jobRow(ctx.store.db, jobId)).toMatchObject({ state: 'failed', lease_token: null })
    const submission = await submissionRow(ctx.store.db, submissionId)
    expect(submission).toMatchObject({ state: 'failed', reason_code: 'time_limit' })
    expect(submission.reason_message).toContain('stage predict')
    expect(await chargeRow(ctx.store.db, submissionId)).toMatchObject({ refunded_at: null })
    expect(await ctx.queue.heartbeat(job, LEASE_MS)).toBe(false)
  })

  it('refunds when the deadline was set for one of proctor’s own steps', async () => {
    const { submissionId } = await acceptedSubmission(ctx)
    const job = await startStage('push')
    await ctx.queue.withLease(job, (trx) =>
      ctx.queue.setDeadline(
        trx,
        job,
        new Date(ctx.clock.now().getTime() + 60_000),
        'infrastructure',
      ),
    )

    await heartbeatFor(job, 80_000)
    await reapExpiredJobs(ctx)

    expect(await submissionRow(ctx.store.db, submissionId)).toMatchObject({
      state: 'failed',
      reason_code: 'infrastructure',
    })
    expect(await chargeRow(ctx.store.db, submissionId)).toMatchObject({
      refund_reason: 'infrastructure',
    })
  })

  it('forgets the deadline when it is cleared or the job goes back to the queue', async () => {
    const { jobId } = await acceptedSubmission(ctx)
    const job = await startStage('build')
    const soon = new Date(ctx.clock.now().getTime() + 1_000)
    await ctx.queue.withLease(job, (trx) => ctx.queue.setDeadline(trx, job, soon))
    await ctx.queue.withLease(job, (trx) => ctx.queue.setDeadline(trx, job, null))

    await heartbeatFor(job, 40_000)
    expect(await reapExpiredJobs(ctx)).toBe(0)

    await ctx.queue.withLease(job, (trx) => ctx.queue.setDeadline(trx, job, soon))
    await ctx.queue.withLease(job, (trx) => ctx.queue.retry(trx, job, 0, 'engine restarted'))
    expect(await jobRow(ctx.store.db, jobId)).toMatchObject({ state: 'waiting', deadline_at: null })
  })
})
