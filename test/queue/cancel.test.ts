import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { cancelSubmission } from '../../src/queue/cancel.ts'
import { moveSubmission } from '../../src/submissions/transitions.ts'
import {
  acceptedSubmission,
  chargeRow,
  insertSubmission,
  jobRow,
  submissionRow,
  testContext,
  type TestContext,
} from './support/builders.ts'
import { STORE_FACTORIES } from './support/stores.ts'

const CLAIM = { workerId: 'w1', queues: ['iris'], capabilities: [], leaseMs: 60_000 }
const BY = { actor: 'organizer:ada', reason: 'duplicate of an earlier push' }

describe.each(STORE_FACTORIES)('cancelling a submission on $dialect', (factory) => {
  let ctx: TestContext

  beforeEach(async (context) => {
    ctx = testContext(await factory.open(context.task.name))
  })
  afterEach(async () => {
    await ctx.store.close()
  })

  it('never starts a queued job, records who and when, and refunds the unit', async () => {
    const { submissionId, jobId, evaluationId } = await acceptedSubmission(ctx)

    const result = await cancelSubmission(ctx, submissionId, BY)

    expect(result).toEqual({
      submissionId,
      from: 'queued',
      jobs: [{ id: jobId, was: 'waiting' }],
      refunded: true,
    })
    expect(await ctx.queue.claim(CLAIM)).toBeNull()
    expect(await jobRow(ctx.store.db, jobId)).toMatchObject({
      state: 'failed',
      last_error: 'cancelled by organizer:ada: duplicate of an earlier push',
    })
    const submission = await submissionRow(ctx.store.db, submissionId)
    expect(submission).toMatchObject({ state: 'cancelled', reason_code: 'cancelled' })
    expect(submission.reason_message).toBe(
      'cancelled by organizer:ada at 2026-01-01T00:00:00.000Z: duplicate of an earlier push; the quota unit was refunded',
    )
    const event = await ctx.store.db
      .selectFrom('submission_events')
      .selectAll()
      .where('submission_id', '=', submissionId)
      .where('state', '=', 'cancelled')
      .executeTakeFirstOrThrow()
    expect(event).toMatchObject({ actor: 'organizer:ada', at: '2026-01-01T00:00:00.000Z' })
    expect(await chargeRow(ctx.store.db, submissionId)).toMatchObject({
      refund_reason: 'cancelled',
    })
    const evaluation = await ctx.store.db
      .selectFrom('evaluations')
      .selectAll()
      .where('id', '=', evaluationId)
      .executeTakeFirstOrThrow()
    expect(evaluation).toMatchObject({ state: 'cancelled', reason_code: 'cancelled' })
  })

  it('takes the lease from a running job so its worker stops and cannot write', async () => {
    const { submissionId, jobId } = await acceptedSubmission(ctx)
    const job = await ctx.queue.claim(CLAIM)
    if (!job) throw new Error('expected a job')
    await ctx.queue.withLease(job, (trx) =>
      moveSubmission(trx, submissionId, {
        to: 'building',
        message: 'building',
        actor: 'worker:w1',
        at: ctx.clock.now(),
      }),
    )

    const result = await cancelSubmission(ctx, submissionId, BY)

    expect(result.jobs).toEqual([{ id: jobId, was: 'running' }])
    expect(await ctx.queue.heartbeat(job, 60_000)).toBe(false)
    await expect(
      ctx.queue.withLease(job, (trx) => ctx.queue.complete(trx, job)),
    ).rejects.toMatchObject({ code: 'stale_lease' })
    expect(await jobRow(ctx.store.db, jobId)).toMatchObject({ state: 'failed', lease_token: null })
    expect(await submissionRow(ctx.store.db, submissionId)).toMatchObject({ state: 'cancelled' })
  })

  it('frees a slot under the in-flight cap for the participant’s next job', async () => {
    const running = await acceptedSubmission(ctx, { job: { inFlightCap: 1 } })
    const next = await acceptedSubmission(ctx, { job: { inFlightCap: 1 } })
    await ctx.queue.claim(CLAIM)
    expect(await ctx.queue.claim(CLAIM)).toBeNull()

    await cancelSubmission(ctx, running.submissionId, BY)

    expect(await ctx.queue.claim(CLAIM)).toMatchObject({ id: next.jobId })
  })

  it('refuses to cancel a submission that has ended, and one that does not exist', async () => {
    const scored = await insertSubmission(ctx.store.db, ctx.clock.now(), { state: 'scored' })

    await expect(cancelSubmission(ctx, scored, BY)).rejects.toMatchObject({
      code: 'not_cancellable',
      status: 409,
    })
    await expect(cancelSubmission(ctx, 9_999, BY)).rejects.toMatchObject({ status: 404 })
    expect(await submissionRow(ctx.store.db, scored)).toMatchObject({ state: 'scored' })
  })
})
