import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { JobQueue } from '../../src/queue/job-queue.ts'
import { requeueSubmission } from '../../src/queue/requeue.ts'
import { quotaStatus } from '../../src/quota/charges.ts'
import { parseWindow } from '../../src/quota/window.ts'
import { moveSubmission } from '../../src/submissions/transitions.ts'
import { reapExpiredJobs } from '../../src/worker/reaper.ts'
import {
  chargeRow,
  submissionRow,
  testContext,
  type TestContext,
} from '../queue/support/builders.ts'
import { testCatalog, testChallenge, testConfig } from '../queue/support/challenges.ts'
import { STORE_FACTORIES, type StoreFactory } from '../queue/support/stores.ts'
import fixture from './fixtures/over-quota-stays-failed.json' with { type: 'json' }
import { pushTag } from './support/push.ts'

const WINDOW = parseWindow({ window: fixture.config.window })
const LIMIT = fixture.config.quota
const CLAIM = { workerId: 'w1', queues: ['*'], capabilities: [], leaseMs: 60_000 }

/**
 * An over-quota push is failed `quota_exceeded` and never processed again by anything
 * automatic: not a restart, not the reaper, not time passing, not another submission's
 * refund. Only an organizer's explicit re-queue runs it. Steps follow
 * /work/shared/fixtures/sequences/over-quota-stays-failed.json; step 4 (a redelivered
 * hook) belongs to intake and is tested there.
 */
describe.each(STORE_FACTORIES)('an over-quota submission on $dialect', (factory: StoreFactory) => {
  let ctx: TestContext

  beforeEach(async (context) => {
    ctx = testContext(await factory.open(context.task.name), '2026-03-10T12:00:00Z')
  })
  afterEach(async () => {
    await ctx.store.close()
  })

  /** Everything automatic a running proctor does, then a worker taking all it can. */
  async function runAutomatics(): Promise<number[]> {
    await reapExpiredJobs(ctx)
    const claimed = []
    for (let job = await ctx.queue.claim(CLAIM); job; job = await ctx.queue.claim(CLAIM)) {
      claimed.push(job)
    }
    for (const job of claimed) await ctx.queue.release(job)
    return claimed.map((job) => job.submissionId ?? 0)
  }

  it('stays failed across a restart, the reaper, 25 h and v10 failing, until an organizer re-queues it', async () => {
    // 1: v10 accepted and queued.
    const v10 = await pushTag(ctx, { window: WINDOW, limit: LIMIT, subject: 'alice' })
    expect(v10).toMatchObject({ accepted: true })

    // 2: v11 over quota: failed, reported with the next slot, not queued.
    ctx.clock.advance(60_000)
    const v11 = await pushTag(ctx, { window: WINDOW, limit: LIMIT, subject: 'alice' })
    expect(v11).toMatchObject({ accepted: false, jobId: null })
    const failed = await submissionRow(ctx.store.db, v11.submissionId)
    expect(failed).toMatchObject({ state: 'failed', reason_code: 'quota_exceeded' })
    expect(failed.reason_message).toContain('next free slot 2026-03-11T12:00:00.000Z')
    expect(await chargeRow(ctx.store.db, v11.submissionId)).toBeUndefined()

    // 3: restart: a new connection and queue on the same database, startup reaper pass.
    const reopened = await factory.reopen(ctx.store)
    await ctx.store.close()
    ctx = { ...ctx, store: reopened, queue: new JobQueue(reopened, ctx.clock) }
    expect(await runAutomatics()).toEqual([v10.submissionId])
    expect(await submissionRow(ctx.store.db, v11.submissionId)).toMatchObject({ state: 'failed' })

    // 5: 25 h later, with a quota unit free again, nothing picks v11 up.
    ctx.clock.advance(25 * 3_600_000)
    const scope = { challengeId: 'iris', roundId: null, subject: 'alice', debug: false }
    expect((await quotaStatus(ctx.store.db, scope, WINDOW, LIMIT, ctx.clock.now())).remaining).toBe(
      1,
    )
    expect(await runAutomatics()).toEqual([v10.submissionId])
    expect(await submissionRow(ctx.store.db, v11.submissionId)).toMatchObject({
      state: 'failed',
      reason_code: 'quota_exceeded',
    })

    // 6: v10 fails (build error: its unit is kept); v11 is still not resurrected.
    await ctx.store.db
      .updateTable('jobs')
      .set({ state: 'failed' })
      .where('id', '=', v10.jobId)
      .execute()
    await moveSubmission(ctx.store.db, v10.submissionId, {
      to: 'failed',
      reasonCode: 'build_failed',
      message: 'build failed',
      actor: 'operator:ops',
      at: ctx.clock.now(),
    })
    expect(await chargeRow(ctx.store.db, v10.submissionId)).toMatchObject({ refunded_at: null })
    expect(await runAutomatics()).toEqual([])
    const jobsForV11 = await ctx.store.db
      .selectFrom('jobs')
      .select('id')
      .where('submission_id', '=', v11.submissionId)
      .execute()
    expect(jobsForV11).toEqual([])
    const events = await ctx.store.db
      .selectFrom('submission_events')
      .select('state')
      .where('submission_id', '=', v11.submissionId)
      .where('kind', '=', 'state')
      .execute()
    expect(events.map((e) => e.state)).toEqual(['failed'])

    // Only an organizer's explicit re-queue runs it, recorded.
    const challenges = testCatalog(testChallenge())
    await requeueSubmission({ ...ctx, config: testConfig(), challenges }, v11.submissionId, {
      actor: 'organizer:ada',
      reason: 'allowed one extra',
    })
    expect(await runAutomatics()).toEqual([v11.submissionId])
  })
})
