import type { Transaction } from 'kysely'

import type { AppContext } from '../app/context.ts'
import { StaleLeaseError, type ClaimedJob } from '../queue/job-queue.ts'
import type { Database } from '../store/schema.ts'
import { groupCommitterFor } from './group-commit.ts'

/**
 * Like `JobQueue.withLease`, but the transaction is shared with the other writes ready at
 * the same moment (group-commit.ts): concurrent intake jobs then cost one fsync between
 * them instead of one each. The unit first proves the job still holds its lease (same check
 * as withLease); a stale lease throws StaleLeaseError and nothing of `fn` is written.
 */
export function withLeaseGrouped<T>(
  ctx: AppContext,
  job: ClaimedJob,
  fn: (trx: Transaction<Database>) => Promise<T>,
): Promise<T> {
  return groupCommitterFor(ctx.store).run(async function underLease(trx) {
    let check = trx
      .selectFrom('jobs')
      .select('id')
      .where('id', '=', job.id)
      .where('lease_token', '=', job.leaseToken)
      .where('state', '=', 'running')
    if (ctx.store.dialect === 'postgres') check = check.forUpdate()
    if (!(await check.executeTakeFirst())) throw new StaleLeaseError(job.id)
    return fn(trx)
  })
}
