import { afterEach, beforeEach, describe, expect, it } from 'vitest'

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

/**
 * A worker that vanishes mid-job: its lease expires, the reaper puts the job back in its
 * place with the attempt raised, and after the last attempt the submission fails
 * `worker_lost` with its quota unit refunded. Time moves by a ManualClock.
 */
describe.each(STORE_FACTORIES)('lease expiry on $dialect', (factory) => {
  let ctx: TestContext

  beforeEach(async (context) => {
    ctx = testContext(await factory.open(context.task.name))
  })
  afterEach(async () => {
    await ctx.store.close()
  })

  /** Claims the next job and moves its submission to `building`, as the evaluate job does. */
  async function startNext(workerId: string) {
    const job = await ctx.queue.claim({
      workerId,
      queues: ['iris'],
      capabilities: [],
      leaseMs: LEASE_MS,
    })
    if (!job?.submissionId) throw new Error('expected an evaluate job')
    const submissionId = job.submissionId
    await ctx.queue.withLease(job, (trx) =>
      moveSubmission(trx, submissionId, {
        to: 'building',
        message: 'fetching',
        actor: `worker:${workerId}`,
        at: ctx.clock.now(),
        set: { stage: 'fetch' },
      }),
    )
    return job
  }

  it('retries in place with the attempt raised, then fails worker_lost and refunds', async () => {
    const lost = await acceptedSubmission(ctx, { subject: 'alice' })
    const behind = await acceptedSubmission(ctx, { subject: 'alice' })

    for (const attempt of [1, 2]) {
      const job = await startNext(`worker-${attempt}`)
      expect(job).toMatchObject({ id: lost.jobId, attempt })

      ctx.clock.advance(LEASE_MS + 1_000)
      expect(await reapExpiredJobs(ctx)).toBe(1)

      expect(await jobRow(ctx.store.db, lost.jobId)).toMatchObject({ state: 'waiting', attempt })
      expect(await submissionRow(ctx.store.db, lost.submissionId)).toMatchObject({
        state: 'queued',
        attempt: attempt + 1,
        stage: null,
      })
    }

    // Its place is kept: it is claimed again before the job queued after it.
    const last = await startNext('worker-3')
    expect(last).toMatchObject({ id: lost.jobId, attempt: 3 })
    ctx.clock.advance(LEASE_MS + 1_000)
    await reapExpiredJobs(ctx)

    expect(await jobRow(ctx.store.db, lost.jobId)).toMatchObject({
      state: 'failed',
      lease_token: null,
    })
    const failed = await submissionRow(ctx.store.db, lost.submissionId)
    expect(failed).toMatchObject({ state: 'failed', reason_code: 'worker_lost' })
    expect(failed.reason_message).toContain('refunded')
    expect(await chargeRow(ctx.store.db, lost.submissionId)).toMatchObject({
      refunded_at: ctx.clock.now().toISOString(),
      refund_reason: 'worker_lost',
    })
    const evaluation = await ctx.store.db
      .selectFrom('evaluations')
      .selectAll()
      .where('id', '=', lost.evaluationId)
      .executeTakeFirstOrThrow()
    expect(evaluation).toMatchObject({ state: 'failed', reason_code: 'worker_lost' })

    expect(await chargeRow(ctx.store.db, behind.submissionId)).toMatchObject({ refunded_at: null })
    expect(
      (
        await ctx.queue.claim({
          workerId: 'w',
          queues: ['iris'],
          capabilities: [],
          leaseMs: LEASE_MS,
        })
      )?.id,
    ).toBe(behind.jobId)
  })

  it('leaves a job alone while its worker heartbeats', async () => {
    const { jobId } = await acceptedSubmission(ctx)
    const job = await startNext('worker-1')

    for (let i = 0; i < 5; i++) {
      ctx.clock.advance(LEASE_MS / 3)
      expect(await ctx.queue.heartbeat(job, LEASE_MS)).toBe(true)
      expect(await reapExpiredJobs(ctx)).toBe(0)
    }

    expect(await jobRow(ctx.store.db, jobId)).toMatchObject({ state: 'running', attempt: 1 })
  })

  it('refuses every write from the worker that lost its lease', async () => {
    const { submissionId } = await acceptedSubmission(ctx)
    const job = await startNext('worker-1')
    ctx.clock.advance(LEASE_MS + 1_000)
    await reapExpiredJobs(ctx)

    const write = ctx.queue.withLease(job, (trx) =>
      moveSubmission(trx, submissionId, {
        to: 'failed',
        reasonCode: 'build_failed',
        message: 'late',
        actor: 'worker:worker-1',
        at: ctx.clock.now(),
      }),
    )

    await expect(write).rejects.toMatchObject({ code: 'stale_lease' })
    expect(await ctx.queue.heartbeat(job, LEASE_MS)).toBe(false)
    expect(await submissionRow(ctx.store.db, submissionId)).toMatchObject({ state: 'queued' })
  })
})
