import { sql, type Kysely } from 'kysely'

import type { Dialect } from '../dialect.ts'

/**
 * Scheduling: fair order inside a queue, in-flight caps, stage deadlines and the numbers
 * behind a queue position estimate (see docs/scheduling.md).
 *
 * - `jobs.fair_seq`: the job's place among its queue's fairness keys (start-time fair
 *   queueing); the claim takes the lowest, after priority. Existing jobs get 0, so they are
 *   claimed in id order before any job enqueued after the upgrade.
 * - `jobs.in_flight_cap`: at most this many running jobs of the same (queue, fairness key);
 *   past it, the job waits.
 * - `jobs.deadline_at`, `jobs.deadline_reason`: set when a stage starts; the reaper fails a
 *   running job past it with that reason.
 * - `jobs.claimed_at`, `jobs.finished_at`: when the current attempt started and ended.
 * - `job_queues`: one row per queue: its virtual time (the fair_seq last claimed) and a
 *   moving average of how long a job runs, for estimated starts.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const schema = db.schema

  // SQLite adds one column per ALTER TABLE statement.
  await schema
    .alterTable('jobs')
    .addColumn('fair_seq', 'integer', (col) => col.notNull().defaultTo(0))
    .execute()
  await schema.alterTable('jobs').addColumn('in_flight_cap', 'integer').execute()
  await schema.alterTable('jobs').addColumn('deadline_at', 'text').execute()
  await schema.alterTable('jobs').addColumn('deadline_reason', 'text').execute()
  await schema.alterTable('jobs').addColumn('claimed_at', 'text').execute()
  await schema.alterTable('jobs').addColumn('finished_at', 'text').execute()

  await schema
    .createTable('job_queues')
    .addColumn('queue', 'text', (col) => col.primaryKey())
    .addColumn('vtime', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('run_ms_avg', dialect === 'postgres' ? 'double precision' : 'real')
    .addColumn('created_at', 'text', (col) => col.notNull())
    .execute()
  const now = new Date().toISOString()
  await sql`insert into job_queues (queue, vtime, created_at)
            select distinct queue, 0, ${now} from jobs`.execute(db)

  // The claim reads one queue's waiting jobs in claim order and stops at the first it may
  // take: (queue, state) equal, then exactly the ORDER BY, so no sort and no full scan.
  await schema.dropIndex('jobs_claimable').execute()
  await schema
    .createIndex('jobs_claim')
    .on('jobs')
    .columns(['queue', 'state', 'priority desc', 'fair_seq', 'id'])
    .execute()
  // Per fairness key: its last waiting fair_seq (enqueue) and its running count (the cap).
  await schema
    .createIndex('jobs_fairness')
    .on('jobs')
    .columns(['queue', 'fairness_key', 'state', 'fair_seq'])
    .execute()
  // No index for deadlines: the reaper finds them among running jobs (a few per worker slot)
  // through jobs_lease, and every index on `state` costs each claim and finish a page write.
}
