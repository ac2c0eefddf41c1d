import { sql, type UpdateObject } from 'kysely'

import type { Database } from '../store/schema.ts'
import type { Executor } from '../store/transaction.ts'
import { StaleLeaseError, type ClaimedJob } from './types.ts'

/** What every write that takes a job out of `running` clears. */
export const LEASE_CLEARED = {
  lease_token: null,
  lease_expires_at: null,
  deadline_at: null,
  deadline_reason: null,
} as const

/**
 * Writes to a job only while `job`'s lease holds: same token, still running. Anything else
 * (reaped, cancelled, finished by another attempt) throws StaleLeaseError and writes
 * nothing. Returns the job's queue and when this attempt was claimed.
 */
export async function updateHeldJob(
  db: Executor,
  job: ClaimedJob,
  values: UpdateObject<Database, 'jobs'>,
): Promise<{ queue: string; claimed_at: string | null }> {
  const row = await db
    .updateTable('jobs')
    .set(values)
    .where('id', '=', job.id)
    .where('lease_token', '=', job.leaseToken)
    .where('state', '=', 'running')
    .returning(['queue', 'claimed_at'])
    .executeTakeFirst()
  if (!row) throw new StaleLeaseError(job.id)
  return row
}

/** Folds one run time into the queue's moving average (the last ~10 jobs weigh most). */
export async function recordRunTime(db: Executor, queue: string, runMs: number): Promise<void> {
  await db
    .updateTable('job_queues')
    .set({
      run_ms_avg: sql<number>`case when run_ms_avg is null then ${runMs}
        else run_ms_avg * 0.9 + ${runMs} * 0.1 end`,
    })
    .where('queue', '=', queue)
    .execute()
}
