import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'

import { sql, type Transaction } from 'kysely'

import type { Clock } from '../domain/clock.ts'
import { ProctorError } from '../domain/errors.ts'
import type { Store } from '../store/database.ts'
import type { Database, Job, JobKind } from '../store/schema.ts'
import { inTransaction, type Executor } from '../store/transaction.ts'

export interface EnqueueOptions {
  kind: JobKind
  queue: string
  priority?: number
  eventId?: number | null
  submissionId?: number | null
  evaluationId?: number | null
  fairnessKey?: string | null
  capabilities?: readonly string[]
  maxAttempts: number
  runAfter?: Date
}

/** A job a worker holds. Every write it makes about the job carries `leaseToken`. */
export interface ClaimedJob {
  readonly id: number
  readonly kind: JobKind
  readonly queue: string
  readonly attempt: number
  readonly maxAttempts: number
  readonly leaseToken: string
  readonly eventId: number | null
  readonly submissionId: number | null
  readonly evaluationId: number | null
}

export interface ClaimOptions {
  workerId: string
  /** Queues served; `*` means every queue. */
  queues: readonly string[]
  capabilities: readonly string[]
  kinds?: readonly JobKind[]
  leaseMs: number
}

/** The lease was lost (expired and reaped, or the job was cancelled): stop writing. */
export class StaleLeaseError extends ProctorError {
  constructor(jobId: number) {
    super('stale_lease', `job ${jobId}: this worker's lease is no longer valid; another attempt owns the job now`)
  }
}

/**
 * The job queue, in the same database as the submissions it serves, so a submission's
 * state and its place in the queue change in one transaction and can never disagree.
 *
 * Operations: enqueue, claim, heartbeat, complete, fail, retry, release, reap.
 * SQLite serializes transactions on its one connection, so a claim's select-then-update is
 * atomic; PostgreSQL uses `for update skip locked` so claimers never block each other.
 */
export class JobQueue {
  readonly #store: Store
  readonly #clock: Clock
  readonly #events = new EventEmitter()

  constructor(store: Store, clock: Clock) {
    this.#store = store
    this.#clock = clock
    this.#events.setMaxListeners(0)
  }

  get db() {
    return this.#store.db
  }

  /** Adds a job. Pass the caller's transaction so the job commits with what it is for. */
  async enqueue(db: Executor, options: EnqueueOptions): Promise<number> {
    const now = this.#clock.now().toISOString()
    const row = await db
      .insertInto('jobs')
      .values({
        kind: options.kind,
        queue: options.queue,
        priority: options.priority ?? 0,
        state: 'waiting',
        event_id: options.eventId ?? null,
        submission_id: options.submissionId ?? null,
        evaluation_id: options.evaluationId ?? null,
        fairness_key: options.fairnessKey ?? null,
        capabilities_json: JSON.stringify([...(options.capabilities ?? [])].sort()),
        attempt: 0,
        max_attempts: options.maxAttempts,
        run_after: (options.runAfter ?? this.#clock.now()).toISOString(),
        created_at: now,
        updated_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    return Number(row.id)
  }

  /** Wakes idle workers in this process. Call after the enqueuing transaction commits. */
  wake(): void {
    this.#events.emit('wake')
  }

  onWake(listener: () => void): () => void {
    this.#events.on('wake', listener)
    return () => this.#events.off('wake', listener)
  }

  /**
   * Takes the best waiting job this worker can run, or null. Order: priority (higher
   * first), then fewest running jobs of the same participant, then age.
   */
  async claim(options: ClaimOptions): Promise<ClaimedJob | null> {
    return this.db.transaction().execute(async (trx) => {
      const now = this.#clock.now()
      const candidate = await this.#selectCandidate(trx, options, now)
      if (!candidate) return null

      const leaseToken = randomUUID()
      const attempt = candidate.attempt + 1
      const updated = await trx
        .updateTable('jobs')
        .set({
          state: 'running',
          attempt,
          lease_token: leaseToken,
          lease_expires_at: new Date(now.getTime() + options.leaseMs).toISOString(),
          worker_id: options.workerId,
          updated_at: now.toISOString(),
        })
        .where('id', '=', candidate.id)
        .where('state', '=', 'waiting')
        .executeTakeFirst()
      if (Number(updated.numUpdatedRows) !== 1) return null

      return {
        id: Number(candidate.id),
        kind: candidate.kind,
        queue: candidate.queue,
        attempt,
        maxAttempts: candidate.max_attempts,
        leaseToken,
        eventId: candidate.event_id,
        submissionId: candidate.submission_id,
        evaluationId: candidate.evaluation_id,
      }
    })
  }

  async #selectCandidate(trx: Transaction<Database>, options: ClaimOptions, now: Date): Promise<Job | undefined> {
    let query = trx
      .selectFrom('jobs as j')
      .selectAll('j')
      .where('j.state', '=', 'waiting')
      .where('j.run_after', '<=', now.toISOString())
    if (!options.queues.includes('*')) query = query.where('j.queue', 'in', [...options.queues])
    if (options.kinds) query = query.where('j.kind', 'in', [...options.kinds])

    // A job needing a capability this worker lacks is never handed to it.
    const have = JSON.stringify([...options.capabilities].sort())
    if (options.capabilities.length === 0) query = query.where('j.capabilities_json', '=', '[]')

    query = query
      .orderBy('j.priority', 'desc')
      .orderBy(
        (eb) =>
          eb
            .selectFrom('jobs as r')
            .select((eb2) => eb2.fn.countAll<number>().as('n'))
            .where('r.state', '=', 'running')
            .whereRef('r.fairness_key', '=', 'j.fairness_key'),
        'asc',
      )
      .orderBy('j.id', 'asc')
      .limit(options.capabilities.length === 0 ? 1 : 50)
    if (this.#store.dialect === 'postgres') query = query.forUpdate().skipLocked()

    const rows = await query.execute()
    if (options.capabilities.length === 0) return rows[0]
    const haveSet = new Set(JSON.parse(have) as string[])
    return rows.find((row) => (JSON.parse(row.capabilities_json) as string[]).every((c) => haveSet.has(c)))
  }

  /** Extends the lease. False when the lease was lost: the worker must stop. */
  async heartbeat(job: ClaimedJob, leaseMs: number): Promise<boolean> {
    const now = this.#clock.now()
    const result = await this.db
      .updateTable('jobs')
      .set({ lease_expires_at: new Date(now.getTime() + leaseMs).toISOString(), updated_at: now.toISOString() })
      .where('id', '=', job.id)
      .where('lease_token', '=', job.leaseToken)
      .where('state', '=', 'running')
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  /**
   * Runs `fn` in a transaction that first proves this worker still holds the lease. A stale
   * token throws StaleLeaseError and nothing in `fn` is written.
   */
  async withLease<T>(job: ClaimedJob, fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      let check = trx
        .selectFrom('jobs')
        .select('id')
        .where('id', '=', job.id)
        .where('lease_token', '=', job.leaseToken)
        .where('state', '=', 'running')
      if (this.#store.dialect === 'postgres') check = check.forUpdate()
      if (!(await check.executeTakeFirst())) throw new StaleLeaseError(job.id)
      return fn(trx)
    })
  }

  /** Marks the job done, inside the caller's lease transaction. */
  async complete(trx: Executor, job: ClaimedJob): Promise<void> {
    await this.#finish(trx, job, 'done', null)
  }

  /** Marks the job failed for good, inside the caller's lease transaction. */
  async fail(trx: Executor, job: ClaimedJob, error: string): Promise<void> {
    await this.#finish(trx, job, 'failed', error)
  }

  async #finish(trx: Executor, job: ClaimedJob, state: 'done' | 'failed', error: string | null): Promise<void> {
    await trx
      .updateTable('jobs')
      .set({ state, last_error: error, lease_token: null, lease_expires_at: null, updated_at: this.#clock.now().toISOString() })
      .where('id', '=', job.id)
      .where('lease_token', '=', job.leaseToken)
      .execute()
  }

  /**
   * Puts the job back to wait `delayMs`, keeping its place (its id orders it among equals).
   * Its attempt count stays raised: the next claim raises it again.
   */
  async retry(trx: Executor, job: ClaimedJob, delayMs: number, error: string): Promise<void> {
    const now = this.#clock.now()
    await trx
      .updateTable('jobs')
      .set({
        state: 'waiting',
        run_after: new Date(now.getTime() + delayMs).toISOString(),
        last_error: error,
        lease_token: null,
        lease_expires_at: null,
        worker_id: null,
        updated_at: now.toISOString(),
      })
      .where('id', '=', job.id)
      .where('lease_token', '=', job.leaseToken)
      .execute()
  }

  /** Gives the job back without counting the attempt (graceful shutdown). */
  async release(job: ClaimedJob): Promise<void> {
    await this.db
      .updateTable('jobs')
      .set({
        state: 'waiting',
        attempt: job.attempt - 1,
        lease_token: null,
        lease_expires_at: null,
        worker_id: null,
        updated_at: this.#clock.now().toISOString(),
      })
      .where('id', '=', job.id)
      .where('lease_token', '=', job.leaseToken)
      .execute()
  }

  /**
   * Finds running jobs whose lease expired (worker killed, host lost) and hands each to
   * `onExpired` in its own transaction, with whether it has attempts left. The callback
   * decides what the submission becomes; this puts the job back or fails it.
   */
  async reap(onExpired: (trx: Transaction<Database>, job: Job, willRetry: boolean) => Promise<void>): Promise<number> {
    const now = this.#clock.now().toISOString()
    const expired = await this.db
      .selectFrom('jobs')
      .selectAll()
      .where('state', '=', 'running')
      .where('lease_expires_at', '<', now)
      .execute()

    let reaped = 0
    for (const job of expired) {
      await inTransaction(this.db, async (trx) => {
        const willRetry = job.attempt < job.max_attempts
        const result = await trx
          .updateTable('jobs')
          .set({
            state: willRetry ? 'waiting' : 'failed',
            last_error: `lease expired on worker ${job.worker_id ?? '?'} (attempt ${job.attempt})`,
            lease_token: null,
            lease_expires_at: null,
            worker_id: null,
            updated_at: now,
          })
          .where('id', '=', job.id)
          .where('lease_token', '=', job.lease_token)
          .executeTakeFirst()
        if (Number(result.numUpdatedRows) !== 1) return
        await onExpired(trx, job, willRetry)
        reaped++
      })
    }
    return reaped
  }

  /** Jobs waiting in a queue, for status pages: depth and the oldest one's enqueue time. */
  async depth(queue?: string): Promise<{ queue: string; waiting: number; running: number; oldest: string | null }[]> {
    let query = this.db
      .selectFrom('jobs')
      .select([
        'queue',
        sql<number>`sum(case when state = 'waiting' then 1 else 0 end)`.as('waiting'),
        sql<number>`sum(case when state = 'running' then 1 else 0 end)`.as('running'),
        sql<string | null>`min(case when state = 'waiting' then created_at end)`.as('oldest'),
      ])
      .where('state', 'in', ['waiting', 'running'])
      .groupBy('queue')
    if (queue) query = query.where('queue', '=', queue)
    const rows = await query.execute()
    return rows.map((r) => ({ queue: r.queue, waiting: Number(r.waiting), running: Number(r.running), oldest: r.oldest }))
  }
}
