import { sql, type Transaction } from 'kysely'

import type { Dialect } from '../store/database.ts'
import type { Database, Job, JobKind } from '../store/schema.ts'

export interface ClaimFilter {
  queue: string
  now: Date
  kinds: readonly JobKind[] | undefined
  /** Stored capability sets this worker can run (see capabilities.ts). */
  capabilityKeys: readonly string[]
}

export interface Lease {
  workerId: string
  token: string
  expiresAt: Date
}

/**
 * Takes the first job of one queue in claim order, in one statement: highest priority, then
 * lowest fair_seq (fair between fairness keys), then oldest. Skipped on the way: jobs not due
 * yet, of another kind, needing a capability the worker lacks, or whose fairness key already
 * has `in_flight_cap` running jobs in this queue (they wait; they are not refused).
 *
 * The subquery walks the jobs_claim index in that order and stops at the first match, so the
 * cost does not grow with the queue. The in-flight count is evaluated only for capped rows
 * it walks past. SQLite runs the statement alone on its connection; PostgreSQL's
 * `skip locked` lets concurrent claimers pass each other's candidate rows.
 *
 * Returns the job as claimed (attempt raised, lease set), or undefined.
 */
export async function claimFromQueue(
  trx: Transaction<Database>,
  dialect: Dialect,
  filter: ClaimFilter,
  lease: Lease,
): Promise<Job | undefined> {
  const now = filter.now.toISOString()
  let pick = trx
    .selectFrom('jobs as j')
    .select('j.id')
    .where('j.queue', '=', filter.queue)
    .where('j.state', '=', 'waiting')
    .where('j.run_after', '<=', now)
    .where('j.capabilities_json', 'in', [...filter.capabilityKeys])
    .where((eb) =>
      eb.or([
        eb('j.in_flight_cap', 'is', null),
        eb(
          eb
            .selectFrom('jobs as r')
            .select((inner) => inner.fn.countAll<number>().as('n'))
            .whereRef('r.queue', '=', 'j.queue')
            .whereRef('r.fairness_key', '=', 'j.fairness_key')
            .where('r.state', '=', 'running'),
          '<',
          eb.ref('j.in_flight_cap'),
        ),
      ]),
    )
  if (filter.kinds) pick = pick.where('j.kind', 'in', [...filter.kinds])
  pick = pick.orderBy('j.priority', 'desc').orderBy('j.fair_seq').orderBy('j.id').limit(1)
  if (dialect === 'postgres') pick = pick.forUpdate().skipLocked()

  const claimed = await trx
    .updateTable('jobs')
    .set({
      state: 'running',
      attempt: sql<number>`attempt + 1`,
      lease_token: lease.token,
      lease_expires_at: lease.expiresAt.toISOString(),
      worker_id: lease.workerId,
      claimed_at: now,
      deadline_at: null,
      deadline_reason: null,
      updated_at: now,
    })
    .where('id', '=', pick)
    .where('state', '=', 'waiting')
    .returningAll()
    .executeTakeFirst()

  // On PostgreSQL two claimers on separate connections can both pass the in-flight filter:
  // recount under a lock per (queue, key) and hand the job back if the cap was passed.
  // SQLite serializes claims on its one connection, so the filter alone holds there.
  if (
    dialect === 'postgres' &&
    claimed &&
    claimed.in_flight_cap !== null &&
    claimed.fairness_key !== null
  ) {
    const capKey = JSON.stringify(['proctor.cap', claimed.queue, claimed.fairness_key])
    await sql`select pg_advisory_xact_lock(hashtextextended(${capKey}, 0))`.execute(trx)
    const running = await trx
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('queue', '=', claimed.queue)
      .where('fairness_key', '=', claimed.fairness_key)
      .where('state', '=', 'running')
      .executeTakeFirstOrThrow()
    if (Number(running.n) > claimed.in_flight_cap) {
      await trx
        .updateTable('jobs')
        .set({
          state: 'waiting',
          attempt: sql<number>`attempt - 1`,
          lease_token: null,
          lease_expires_at: null,
          worker_id: null,
          claimed_at: null,
        })
        .where('id', '=', claimed.id)
        .execute()
      return undefined
    }
  }
  return claimed
}

/** Moves the queue's virtual time up to the claimed job's fair_seq (never down). */
export async function advanceVirtualTime(
  trx: Transaction<Database>,
  queue: string,
  fairSeq: number,
): Promise<void> {
  await trx
    .updateTable('job_queues')
    .set({ vtime: fairSeq })
    .where('queue', '=', queue)
    .where('vtime', '<', fairSeq)
    .execute()
}

/**
 * Where a new job of `fairnessKey` goes in its queue (start-time fair queueing): after the
 * key's own waiting jobs, and never before the queue's virtual time. A key with 50 waiting
 * jobs has them at v+1 … v+50; a key arriving later starts at v+1 and is taken within one
 * round of the keys ahead of it. A key with nothing waiting banks no credit. Jobs without a
 * key are their own key.
 */
export async function nextFairSeq(
  trx: Transaction<Database>,
  queue: string,
  fairnessKey: string | null,
): Promise<number> {
  const row = await trx
    .selectNoFrom((eb) => [
      eb.selectFrom('job_queues').select('vtime').where('queue', '=', queue).as('vtime'),
      (fairnessKey === null
        ? sql<number | null>`null`
        : eb
            .selectFrom('jobs')
            .select((inner) => inner.fn.max('fair_seq').as('last'))
            .where('queue', '=', queue)
            .where('fairness_key', '=', fairnessKey)
            .where('state', '=', 'waiting')
      ).as('last'),
    ])
    .executeTakeFirstOrThrow()
  return Math.max(Number(row.vtime ?? 0), Number(row.last ?? 0)) + 1
}

/** Registers a queue the first time a job enters it. */
export async function ensureQueue(
  trx: Transaction<Database>,
  queue: string,
  now: Date,
): Promise<void> {
  await trx
    .insertInto('job_queues')
    .values({ queue, vtime: 0, created_at: now.toISOString() })
    .onConflict((oc) => oc.column('queue').doNothing())
    .execute()
}
