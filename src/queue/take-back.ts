import type { Transaction } from 'kysely'

import type { Database, Job } from '../store/schema.ts'
import { inTransaction, type Executor } from '../store/transaction.ts'

/**
 * Taking a job back from the worker holding it, without that worker's token: when its lease
 * expired, when its stage deadline passed, or when the submission was cancelled. Each ends
 * the lease, so the worker's next heartbeat or write is refused and it stops.
 */

/** Running jobs whose lease expired: back in place (attempts left) or failed, one by one. */
export async function reapExpired(
  db: Executor,
  now: Date,
  onExpired: (trx: Transaction<Database>, job: Job, willRetry: boolean) => Promise<void>,
): Promise<number> {
  const expired = await db
    .selectFrom('jobs')
    .selectAll()
    .where('state', '=', 'running')
    .where('lease_expires_at', '<', now.toISOString())
    .execute()

  return takeBack(db, expired, async (trx, job) => {
    const willRetry = job.attempt < job.max_attempts
    const taken = await endLease(trx, job, now, {
      state: willRetry ? 'waiting' : 'failed',
      last_error: `lease expired on worker ${job.worker_id ?? '?'} (attempt ${job.attempt})`,
    })
    if (taken) await onExpired(trx, job, willRetry)
    return taken
  })
}

/** Running jobs past their stage deadline: failed for good, one by one. */
export async function reapOverdue(
  db: Executor,
  now: Date,
  onOverdue: (trx: Transaction<Database>, job: Job) => Promise<void>,
): Promise<number> {
  // No index on deadline_at: running jobs are few and jobs_lease finds them by state.
  const overdue = await db
    .selectFrom('jobs')
    .selectAll()
    .where('state', '=', 'running')
    .where('deadline_at', '<', now.toISOString())
    .execute()

  return takeBack(db, overdue, async (trx, job) => {
    const taken = await endLease(trx, job, now, {
      state: 'failed',
      last_error: `stage deadline ${job.deadline_at ?? '?'} passed on worker ${job.worker_id ?? '?'}`,
    })
    if (taken) await onOverdue(trx, job)
    return taken
  })
}

/** Fails a submission's waiting and running jobs in the caller's transaction. */
export async function cancelJobs(
  trx: Transaction<Database>,
  submissionId: number,
  error: string,
  now: Date,
): Promise<Job[]> {
  const jobs = await trx
    .selectFrom('jobs')
    .selectAll()
    .where('submission_id', '=', submissionId)
    .where('state', 'in', ['waiting', 'running'])
    .execute()
  if (jobs.length === 0) return []

  await trx
    .updateTable('jobs')
    .set({
      state: 'failed',
      last_error: error,
      lease_token: null,
      lease_expires_at: null,
      deadline_at: null,
      finished_at: now.toISOString(),
      updated_at: now.toISOString(),
    })
    .where(
      'id',
      'in',
      jobs.map((job) => job.id),
    )
    .where('state', 'in', ['waiting', 'running'])
    .execute()
  return jobs
}

/** Each job in its own transaction, so one that changed meanwhile does not stop the rest. */
async function takeBack(
  db: Executor,
  jobs: readonly Job[],
  each: (trx: Transaction<Database>, job: Job) => Promise<boolean>,
): Promise<number> {
  let count = 0
  for (const job of jobs) {
    if (await inTransaction(db, (trx) => each(trx, job))) count++
  }
  return count
}

/** Ends a lease someone else held; false if it changed meanwhile (renewed, finished). */
async function endLease(
  trx: Transaction<Database>,
  job: Job,
  now: Date,
  to: { state: 'waiting' | 'failed'; last_error: string },
): Promise<boolean> {
  const at = now.toISOString()
  const result = await trx
    .updateTable('jobs')
    .set({
      ...to,
      lease_token: null,
      lease_expires_at: null,
      worker_id: null,
      deadline_at: null,
      finished_at: to.state === 'failed' ? at : null,
      updated_at: at,
    })
    .where('id', '=', job.id)
    .where('lease_token', '=', job.lease_token)
    .where('state', '=', 'running')
    .executeTakeFirst()
  return Number(result.numUpdatedRows) === 1
}
