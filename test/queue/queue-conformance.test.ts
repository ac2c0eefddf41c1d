import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import {
  JOB_PRIORITY,
  StaleLeaseError,
  type ClaimedJob,
  type ClaimOptions,
  type EnqueueOptions,
} from '../../src/queue/job-queue.ts'
import { jobRow, testContext, type TestContext } from './support/builders.ts'
import { STORE_FACTORIES } from './support/stores.ts'

/**
 * The queue's semantic operations, one spec for every store: enqueue, claim, heartbeat,
 * complete, fail, retry, release, reap, and the order a claim takes jobs in.
 */
describe.each(STORE_FACTORIES)('job queue on $dialect', (factory) => {
  let ctx: TestContext

  beforeEach(async (context) => {
    ctx = testContext(await factory.open(context.task.name))
  })
  afterEach(async () => {
    await ctx.store.close()
  })

  function enqueue(options: Partial<EnqueueOptions> = {}): Promise<number> {
    return ctx.queue.enqueue(ctx.store.db, {
      kind: 'evaluate',
      queue: 'iris',
      maxAttempts: 3,
      ...options,
    })
  }

  function claim(options: Partial<ClaimOptions> = {}): Promise<ClaimedJob | null> {
    return ctx.queue.claim({
      workerId: 'worker-1',
      queues: ['*'],
      capabilities: [],
      leaseMs: 60_000,
      ...options,
    })
  }

  async function completeClaimed(job: ClaimedJob): Promise<void> {
    await ctx.queue.withLease(job, (trx) => ctx.queue.complete(trx, job))
  }

  /** Claims and completes `count` jobs; returns their fairness keys in claim order. */
  async function serve(count: number, options: Partial<ClaimOptions> = {}): Promise<string[]> {
    const served: string[] = []
    for (let i = 0; i < count; i++) {
      const job = await claim(options)
      if (!job) break
      served.push((await jobRow(ctx.store.db, job.id)).fairness_key ?? job.queue)
      await completeClaimed(job)
    }
    return served
  }

  describe('claim', () => {
    it('hands each job to exactly one of many simultaneous claimers', async () => {
      for (let i = 0; i < 10; i++) await enqueue({ fairnessKey: `p${i % 3}` })

      const claims = await Promise.all(
        Array.from({ length: 30 }, (_, i) => claim({ workerId: `worker-${i}` })),
      )

      const ids = claims.flatMap((job) => (job ? [job.id] : []))
      expect(ids).toHaveLength(10)
      expect(new Set(ids).size).toBe(10)
    })

    it('raises the attempt and sets a lease on each claim', async () => {
      const id = await enqueue()

      const job = await claim()

      expect(job).toMatchObject({ id, attempt: 1, maxAttempts: 3 })
      const row = await jobRow(ctx.store.db, id)
      expect(row).toMatchObject({ state: 'running', attempt: 1, worker_id: 'worker-1' })
      expect(row.lease_expires_at).toBe('2026-01-01T00:01:00.000Z')
    })

    it('returns null when nothing is due', async () => {
      await enqueue({ runAfter: new Date('2026-01-01T00:05:00Z') })

      expect(await claim()).toBeNull()
      ctx.clock.advance(5 * 60_000)
      expect(await claim()).not.toBeNull()
    })

    it('serves only the kinds and queues asked for', async () => {
      await enqueue({ kind: 'intake', queue: 'intake' })
      const evaluate = await enqueue({ queue: 'wine' })

      expect(await claim({ queues: ['iris'] })).toBeNull()
      expect(await claim({ kinds: [] })).toBeNull()
      expect((await claim({ kinds: ['evaluate'] }))?.id).toBe(evaluate)
    })

    it('never hands a gpu job to a worker without gpu', async () => {
      const gpuJob = await enqueue({ capabilities: ['gpu'], fairnessKey: 'alice' })
      const cpuJob = await enqueue({ fairnessKey: 'bob' })

      const first = await claim({ capabilities: [] })
      const second = await claim({ capabilities: [] })
      const third = await claim({ capabilities: ['gpu', 'large-memory'] })

      expect(first?.id).toBe(cpuJob)
      expect(second).toBeNull()
      expect(third?.id).toBe(gpuJob)
    })

    it('hands a job needing several capabilities only to a worker with all of them', async () => {
      const both = await enqueue({ capabilities: ['large-memory', 'gpu'] })

      expect(await claim({ capabilities: ['gpu'] })).toBeNull()
      expect((await claim({ capabilities: ['large-memory', 'gpu', 'ssd'] }))?.id).toBe(both)
    })

    it('claims re-runs after new submissions, whoever is ahead in turn', async () => {
      const rerun = await enqueue({ fairnessKey: 'alice', priority: JOB_PRIORITY.rerun })
      ctx.clock.advance(1_000)
      const fresh = await enqueue({ fairnessKey: 'bob' })

      expect((await claim())?.id).toBe(fresh)
      expect((await claim())?.id).toBe(rerun)
    })
  })

  describe('fairness inside a queue', () => {
    it('claims a participant who queues one job behind another 50 within two claims', async () => {
      for (let i = 0; i < 50; i++) await enqueue({ fairnessKey: 'alice' })
      expect(await serve(5)).toEqual(Array(5).fill('alice'))

      await enqueue({ fairnessKey: 'bob' })

      const next = await serve(3)
      expect(next.slice(0, 2)).toContain('bob')
    })

    it('takes turns between participants while they all have work', async () => {
      // Enqueued participant by participant: the order of arrival must not decide.
      for (const key of ['alice', 'bob', 'carol']) {
        for (let i = 0; i < 20; i++) await enqueue({ fairnessKey: key })
      }

      const served = await serve(30)

      const counts = new Map<string, number>()
      for (const key of served) counts.set(key, (counts.get(key) ?? 0) + 1)
      expect([...counts.values()]).toEqual([10, 10, 10])
      expect(served.slice(0, 3).sort()).toEqual(['alice', 'bob', 'carol'])
    })

    it('gives a participant who was idle no credit for the turns they missed', async () => {
      for (let i = 0; i < 10; i++) await enqueue({ fairnessKey: 'alice' })
      await serve(8)

      for (let i = 0; i < 10; i++) await enqueue({ fairnessKey: 'bob' })
      const served = await serve(4)

      expect(served.filter((key) => key === 'bob')).toHaveLength(2)
    })

    it('holds a participant at the in-flight cap and lets the next job run when one ends', async () => {
      for (let i = 0; i < 3; i++) await enqueue({ fairnessKey: 'alice', inFlightCap: 2 })
      await enqueue({ fairnessKey: 'bob', inFlightCap: 2 })

      const claimed = [await claim(), await claim(), await claim()]
      const fourth = await claim()

      const keys = await Promise.all(
        claimed.map(async (job) => (await jobRow(ctx.store.db, job?.id ?? 0)).fairness_key),
      )
      expect(keys).toEqual(['alice', 'bob', 'alice'])
      expect(fourth).toBeNull()
      const aliceWaiting = await ctx.store.db
        .selectFrom('jobs')
        .select('id')
        .where('fairness_key', '=', 'alice')
        .where('state', '=', 'waiting')
        .execute()
      expect(aliceWaiting).toHaveLength(1)

      const [first] = claimed
      if (!first) throw new Error('expected a job')
      await completeClaimed(first)
      expect(await claim()).toMatchObject({ id: aliceWaiting[0]?.id })
    })

    it('counts the in-flight cap per queue', async () => {
      await enqueue({ queue: 'iris', fairnessKey: 'alice', inFlightCap: 1 })
      await enqueue({ queue: 'wine', fairnessKey: 'alice', inFlightCap: 1 })

      expect(await claim()).not.toBeNull()
      expect(await claim()).not.toBeNull()
    })
  })

  describe('across queues', () => {
    it('shares a worker 3:1 between queues weighted 3 and 1 while both have work', async () => {
      for (let i = 0; i < 100; i++) {
        await enqueue({ queue: 'big', fairnessKey: `p${i % 7}` })
        await enqueue({ queue: 'small', fairnessKey: `p${i % 5}` })
      }

      const served: string[] = []
      for (let i = 0; i < 80; i++) {
        const job = await claim({ queues: ['big', 'small'], queueWeights: { big: 3 } })
        if (!job) break
        served.push(job.queue)
        await completeClaimed(job)
      }

      expect(served.filter((q) => q === 'big')).toHaveLength(60)
      expect(served.filter((q) => q === 'small')).toHaveLength(20)
    })

    it('gives all of a worker to the one queue that has work', async () => {
      for (let i = 0; i < 10; i++) await enqueue({ queue: 'small' })

      const served = await serve(10, { queues: ['big', 'small'], queueWeights: { big: 3 } })

      expect(served).toHaveLength(10)
    })

    it('serves every queue for a `*` worker, including ones created after it started', async () => {
      await enqueue({ queue: 'iris' })
      expect(await serve(1)).toHaveLength(1)

      await enqueue({ queue: 'wine' })
      expect(await claim()).toMatchObject({ queue: 'wine' })
    })
  })

  describe('leases', () => {
    it('refuses a stale lease token on every write', async () => {
      await enqueue()
      const job = await claim()
      if (!job) throw new Error('expected a job')
      const stale = { ...job, leaseToken: 'not-the-token' }

      expect(await ctx.queue.heartbeat(stale, 60_000)).toBe(false)
      await expect(ctx.queue.withLease(stale, () => Promise.resolve())).rejects.toBeInstanceOf(
        StaleLeaseError,
      )
      await expect(ctx.queue.complete(ctx.store.db, stale)).rejects.toBeInstanceOf(StaleLeaseError)
      await expect(ctx.queue.fail(ctx.store.db, stale, 'x')).rejects.toBeInstanceOf(StaleLeaseError)
      await expect(ctx.queue.retry(ctx.store.db, stale, 0, 'x')).rejects.toBeInstanceOf(
        StaleLeaseError,
      )
      await expect(ctx.queue.release(stale)).rejects.toBeInstanceOf(StaleLeaseError)
      await expect(
        ctx.queue.setDeadline(ctx.store.db, stale, ctx.clock.now()),
      ).rejects.toBeInstanceOf(StaleLeaseError)
      expect(await jobRow(ctx.store.db, job.id)).toMatchObject({
        state: 'running',
        lease_token: job.leaseToken,
      })
    })

    it('refuses the previous holder once the job was reaped and claimed again', async () => {
      await enqueue()
      const first = await claim({ workerId: 'worker-1' })
      if (!first) throw new Error('expected a job')
      ctx.clock.advance(61_000)
      await ctx.queue.reap(() => Promise.resolve())
      const second = await claim({ workerId: 'worker-2' })

      expect(second?.id).toBe(first.id)
      expect(second?.attempt).toBe(2)
      expect(await ctx.queue.heartbeat(first, 60_000)).toBe(false)
      await expect(
        ctx.queue.withLease(first, (trx) => ctx.queue.complete(trx, first)),
      ).rejects.toBeInstanceOf(StaleLeaseError)
      expect(await jobRow(ctx.store.db, first.id)).toMatchObject({
        state: 'running',
        worker_id: 'worker-2',
      })
    })

    it('extends the lease on heartbeat so the reaper leaves the job alone', async () => {
      await enqueue()
      const job = await claim()
      if (!job) throw new Error('expected a job')

      ctx.clock.advance(40_000)
      expect(await ctx.queue.heartbeat(job, 60_000)).toBe(true)
      ctx.clock.advance(40_000)

      expect(await ctx.queue.reap(() => Promise.resolve())).toBe(0)
    })

    it('puts an expired job back in its place with the attempt raised', async () => {
      const first = await enqueue({ fairnessKey: 'alice' })
      await enqueue({ fairnessKey: 'alice' })
      await enqueue({ fairnessKey: 'bob' })
      const job = await claim()
      expect(job?.id).toBe(first)

      ctx.clock.advance(61_000)
      const retried: boolean[] = []
      await ctx.queue.reap((_trx, _job, willRetry) => {
        retried.push(willRetry)
        return Promise.resolve()
      })

      expect(retried).toEqual([true])
      expect(await jobRow(ctx.store.db, first)).toMatchObject({ state: 'waiting', attempt: 1 })
      expect(await claim()).toMatchObject({ id: first, attempt: 2 })
    })

    it('fails an expired job that has no attempts left', async () => {
      const id = await enqueue({ maxAttempts: 1 })
      await claim()
      ctx.clock.advance(61_000)

      const calls: boolean[] = []
      const reaped = await ctx.queue.reap((_trx, _job, willRetry) => {
        calls.push(willRetry)
        return Promise.resolve()
      })

      expect(reaped).toBe(1)
      expect(calls).toEqual([false])
      expect(await jobRow(ctx.store.db, id)).toMatchObject({ state: 'failed', lease_token: null })
    })
  })

  describe('finishing', () => {
    it('completes, fails and retries only under the lease', async () => {
      const done = await enqueue({ fairnessKey: 'a' })
      const failed = await enqueue({ fairnessKey: 'b' })
      const retried = await enqueue({ fairnessKey: 'c' })
      const jobs = [await claim(), await claim(), await claim()]
      const [j1, j2, j3] = jobs
      if (!j1 || !j2 || !j3) throw new Error('expected three jobs')

      await ctx.queue.withLease(j1, (trx) => ctx.queue.complete(trx, j1))
      await ctx.queue.withLease(j2, (trx) => ctx.queue.fail(trx, j2, 'build broke'))
      await ctx.queue.withLease(j3, (trx) => ctx.queue.retry(trx, j3, 30_000, 'engine down'))

      expect(await jobRow(ctx.store.db, done)).toMatchObject({ state: 'done', lease_token: null })
      expect(await jobRow(ctx.store.db, failed)).toMatchObject({
        state: 'failed',
        last_error: 'build broke',
      })
      expect(await jobRow(ctx.store.db, retried)).toMatchObject({
        state: 'waiting',
        attempt: 1,
        run_after: '2026-01-01T00:00:30.000Z',
      })
      expect(await claim()).toBeNull()
      ctx.clock.advance(30_000)
      expect(await claim()).toMatchObject({ id: retried, attempt: 2 })
    })

    it('releases a job without counting the attempt', async () => {
      const id = await enqueue()
      const job = await claim()
      if (!job) throw new Error('expected a job')

      await ctx.queue.release(job)

      expect(await jobRow(ctx.store.db, id)).toMatchObject({ state: 'waiting', attempt: 0 })
      expect(await claim()).toMatchObject({ id, attempt: 1 })
    })
  })

  describe('visibility', () => {
    it('reports depth and the age of the oldest waiting job per queue', async () => {
      await enqueue({ queue: 'iris' })
      ctx.clock.advance(90_000)
      await enqueue({ queue: 'iris' })
      await enqueue({ queue: 'wine' })
      await claim({ queues: ['wine'] })

      const depth = await ctx.queue.depth()

      expect(depth).toEqual(
        expect.arrayContaining([
          {
            queue: 'iris',
            waiting: 2,
            running: 0,
            oldest: '2026-01-01T00:00:00.000Z',
            oldestAgeSeconds: 90,
          },
          { queue: 'wine', waiting: 0, running: 1, oldest: null, oldestAgeSeconds: null },
        ]),
      )
    })

    it('reports a waiting submission’s position, the work ahead and an estimated start', async () => {
      // History: one job that ran 10 minutes, so the queue knows its run time.
      await enqueue({ fairnessKey: 'old' })
      const past = await claim()
      ctx.clock.advance(10 * 60_000)
      if (!past) throw new Error('expected a job')
      await completeClaimed(past)

      await enqueue({ fairnessKey: 'alice', submissionId: 1 })
      await enqueue({ fairnessKey: 'alice', submissionId: 2 })
      await enqueue({ fairnessKey: 'bob', submissionId: 3 })
      await claim()

      const bob = await ctx.queue.queuePosition(3)
      const aliceSecond = await ctx.queue.queuePosition(2)

      expect(bob).toMatchObject({ position: 1, ahead: 0, running: 1 })
      expect(bob?.estimatedStart).toBe('2026-01-01T00:15:00.000Z')
      expect(aliceSecond).toMatchObject({ position: 2, ahead: 1, running: 1 })
      expect(aliceSecond?.estimatedStart).toBe('2026-01-01T00:25:00.000Z')
      expect(await ctx.queue.queuePosition(1)).toBeNull()
    })

    it('gives no estimate before any job of the queue has finished', async () => {
      await enqueue({ submissionId: 7 })

      expect(await ctx.queue.queuePosition(7)).toMatchObject({
        position: 1,
        ahead: 0,
        estimatedStart: null,
      })
    })
  })
})
