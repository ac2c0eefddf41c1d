import type { AppContext } from '../../../src/app/context.ts'
import { InfrastructureError } from '../../../src/domain/errors.ts'
import { runIntakeJob } from '../../../src/intake/intake-job.ts'

export interface DrainResult {
  ran: number
  retried: string[]
}

/**
 * Plays the worker for intake jobs: claims and runs them until none is waiting. An
 * InfrastructureError puts the job back (no delay) as the real worker would, up to `maxRuns`.
 */
export async function drainIntake(ctx: AppContext, maxRuns = 100): Promise<DrainResult> {
  const result: DrainResult = { ran: 0, retried: [] }
  for (let i = 0; i < maxRuns; i++) {
    const job = await ctx.queue.claim({
      workerId: 'test-worker',
      queues: ['intake'],
      capabilities: [],
      kinds: ['intake'],
      leaseMs: 60_000,
    })
    if (!job) return result
    result.ran++
    try {
      await runIntakeJob(ctx, job)
    } catch (err) {
      if (!(err instanceof InfrastructureError)) throw err
      result.retried.push(err.message)
      await ctx.queue.withLease(job, (trx) => ctx.queue.retry(trx, job, 0, err.message))
      if (result.retried.length >= 3) return result
    }
  }
  return result
}
