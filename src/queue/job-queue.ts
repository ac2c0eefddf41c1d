import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'

import { sql, type Transaction } from 'kysely'

import type { Clock } from '../domain/clock.ts'
import { ProctorError } from '../domain/errors.ts'
import type { ReasonCode } from '../domain/reasons.ts'
import type { Store } from '../store/database.ts'
import type { Database, Job, JobKind } from '../store/schema.ts'
import { inTransaction, type Executor } from '../store/transaction.ts'
import { capabilityKey, servableCapabilityKeys } from './capabilities.ts'
import { advanceVirtualTime, claimFromQueue, ensureQueue, nextFairSeq } from './claim.ts'
import { queuePosition, type QueuePosition } from './queue-position.ts'
import { queueWeight, WeightedRotation } from './rotation.ts'

/**
 * Glossary (see docs/scheduling.md):
 * - queue: one per challenge (its id), plus `intake`. Workers choose the queues they serve.
 * - fairness key: whose job it is (the quota subject); inside a queue, keys take turns.
 * - lease: a token and an expiry a worker holds while it runs a job. Every write about the
 *   job carries the token; a stale token is refused with StaleLeaseError.
 * - attempt: raised by each claim; a job out of attempts fails instead of going back.
 */

/** Priorities: higher is claimed first. Re-runs wait behind new submissions. */
export const JOB_PRIORITY = { submission: 0, rerun: -10 } as const

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
  /** At most this many running jobs of this fairness key in this queue; more wait. */
  inFlightCap?: number | null
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
  /**
   * How this worker shares itself between the queues it serves while they all have work:
   * `{ 'big-challenge': 3 }` takes three of its jobs for each job of a queue of weight 1
   * (the default).
   */
  queueWeights?: Readonly<Record<string, number>>
}

export interface QueueDepth {
  queue: string
  waiting: number
  running: number
  /** When the oldest waiting job was enqueued (ISO-8601 UTC), and how long ago. */
  oldest: string | null
  oldestAgeSeconds: number | null
}

/** The lease was lost (expired and reaped, or the job was cancelled): stop writing. */
export class StaleLeaseError extends ProctorError {
  constructor(jobId: number) {
    super(
      'stale_lease',
      `job ${jobId}: this worker's lease is no longer valid; another attempt owns the job now`,
    )
  }
}

/** How long the list of queues a `*` worker serves is reused before it is read again. */
const QUEUE_LIST_TTL_MS = 1_000
/** Workers whose rotation state is kept; the oldest is forgotten past this. */
const MAX_ROTATIONS = 1_024

/**
 * The job queue, in the same database as the submissions it serves, so a submission's
 * state and its place in the queue change in one transaction and can never disagree.
 *
 * Operations: enqueue, claim, heartbeat, complete, fail, retry, release, reap (and
 * setDeadline, reapOverdue, cancelJobs, queuePosition, depth).
 */
export class JobQueue {
  readonly #store: Store
  readonly #clock: Clock
  readonly #events = new EventEmitter()
  readonly #rotations = new Map<string, WeightedRotation>()
  #queueList: { names: Set<string>; loadedAt: number } | null = null

  constructor(store: Store, clock: Clock) {
    this.#store = store
    this.#clock = clock
    this.#events.setMaxListeners(0)
  }

  get db() {
    return this.#store.db
  }

  /**
   * Adds a job at the end of its fairness key's line. Pass the caller's transaction so the
   * job commits with what it is for.
   */
  async enqueue(db: Executor, options: EnqueueOptions): Promise<number> {
    const now = this.#clock.now()
    const id = await inTransaction(db, async (trx) => {
      await ensureQueue(trx, options.queue, now)
      const fairSeq = await nextFairSeq(trx, options.queue, options.fairnessKey ?? null)
      const row = await trx
        .insertInto('jobs')
        .values({
          kind: options.kind,
          queue: options.queue,
          priority: options.priority ?? JOB_PRIORITY.submission,
          state: 'waiting',
          event_id: options.eventId ?? null,
          submission_id: options.submissionId ?? null,
          evaluation_id: options.evaluationId ?? null,
          fairness_key: options.fairnessKey ?? null,
          capabilities_json: capabilityKey(options.capabilities ?? []),
          attempt: 0,
          max_attempts: options.maxAttempts,
          run_after: (options.runAfter ?? now).toISOString(),
          fair_seq: fairSeq,
          in_flight_cap: options.inFlightCap ?? null,
          created_at: now.toISOString(),
          updated_at: now.toISOString(),
        })
        .returning('id')
        .executeTakeFirstOrThrow()
      return Number(row.id)
    })
    this.#queueList?.names.add(options.queue)
    return id
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
   * Takes the best job this worker may run, or null. Queues are tried in the worker's
   * weighted rotation; inside a queue the order is priority, then fair turn, then age (see
   * claim.ts). One transaction: the job is this worker's when it returns, and no one else's.
   */
  async claim(options: ClaimOptions): Promise<ClaimedJob | null> {
    const capabilityKeys = servableCapabilityKeys(options.capabilities)
    const served = options.queues.includes('*')
      ? await this.#allQueues()
      : [...new Set(options.queues)]
    const rotation = this.#rotationFor(options.workerId)
    const order = rotation.order(served)
    const now = this.#clock.now()
    const lease = {
      workerId: options.workerId,
      token: randomUUID(),
      expiresAt: new Date(now.getTime() + options.leaseMs),
    }

    const claimed = await this.db.transaction().execute(async (trx) => {
      for (const [index, queue] of order.entries()) {
        const filter = { queue, now, kinds: options.kinds, capabilityKeys }
        const job = await claimFromQueue(trx, this.#store.dialect, filter, lease)
        if (!job) continue
        await advanceVirtualTime(trx, queue, job.fair_seq)
        return { job, skipped: order.slice(0, index) }
      }
      return null
    })
    if (!claimed) return null

    const { job, skipped } = claimed
    rotation.served(job.queue, queueWeight(options.queueWeights, job.queue), skipped)
    return {
      id: Number(job.id),
      kind: job.kind,
      queue: job.queue,
      attempt: job.attempt,
      maxAttempts: job.max_attempts,
      leaseToken: lease.token,
      eventId: job.event_id,
      submissionId: job.submission_id,
      evaluationId: job.evaluation_id,
    }
  }

  /** Extends the lease. False when the lease was lost: the worker must stop. */
  async heartbeat(job: ClaimedJob, leaseMs: number): Promise<boolean> {
    const now = this.#clock.now()
    const result = await this.db
      .updateTable('jobs')
      .set({
        lease_expires_at: new Date(now.getTime() + leaseMs).toISOString(),
        updated_at: now.toISOString(),
      })
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

  async #finish(
    trx: Executor,
    job: ClaimedJob,
    state: 'done' | 'failed',
    error: string | null,
  ): Promise<void> {
    const now = this.#clock.now()
    const row = await trx
      .updateTable('jobs')
      .set({
        state,
        last_error: error,
        lease_token: null,
        lease_expires_at: null,
        deadline_at: null,
        finished_at: now.toISOString(),
        updated_at: now.toISOString(),
      })
      .where('id', '=', job.id)
      .where('lease_token', '=', job.leaseToken)
      .where('state', '=', 'running')
      .returning(['queue', 'claimed_at'])
      .executeTakeFirst()
    if (!row) throw new StaleLeaseError(job.id)
    if (row.claimed_at === null) return

    // A moving average of run time, for estimated starts: the last ~10 jobs weigh most.
    const runMs = Math.max(0, now.getTime() - Date.parse(row.claimed_at))
    await trx
      .updateTable('job_queues')
      .set({
        run_ms_avg: sql<number>`case when run_ms_avg is null then ${runMs}
          else run_ms_avg * 0.9 + ${runMs} * 0.1 end`,
      })
      .where('queue', '=', row.queue)
      .execute()
  }

  /**
   * Puts the job back to wait `delayMs`, keeping its place (priority, fair turn and id are
   * unchanged). Its attempt count stays raised: the next claim raises it again.
   */
  async retry(trx: Executor, job: ClaimedJob, delayMs: number, error: string): Promise<void> {
    const now = this.#clock.now()
    const result = await trx
      .updateTable('jobs')
      .set({
        state: 'waiting',
        run_after: new Date(now.getTime() + delayMs).toISOString(),
        last_error: error,
        lease_token: null,
        lease_expires_at: null,
        worker_id: null,
        deadline_at: null,
        deadline_reason: null,
        updated_at: now.toISOString(),
      })
      .where('id', '=', job.id)
      .where('lease_token', '=', job.leaseToken)
      .where('state', '=', 'running')
      .executeTakeFirst()
    if (Number(result.numUpdatedRows) !== 1) throw new StaleLeaseError(job.id)
  }

  /** Gives the job back without counting the attempt (graceful shutdown), in its place. */
  async release(job: ClaimedJob): Promise<void> {
    const result = await this.db
      .updateTable('jobs')
      .set({
        state: 'waiting',
        attempt: sql<number>`attempt - 1`,
        lease_token: null,
        lease_expires_at: null,
        worker_id: null,
        deadline_at: null,
        deadline_reason: null,
        updated_at: this.#clock.now().toISOString(),
      })
      .where('id', '=', job.id)
      .where('lease_token', '=', job.leaseToken)
      .where('state', '=', 'running')
      .executeTakeFirst()
    if (Number(result.numUpdatedRows) !== 1) throw new StaleLeaseError(job.id)
  }

  /**
   * Sets (or clears, with null) the deadline of the stage the job is in. Call it when a
   * stage starts, with the stage's time limit and a grace. Past it, the reaper fails the job
   * and its submission with `reason`: `time_limit` (the default: the participant's unit is
   * kept) for stages that run participant code, `infrastructure` (refunded) for proctor's
   * own steps.
   */
  async setDeadline(
    trx: Executor,
    job: ClaimedJob,
    at: Date | null,
    reason: ReasonCode = 'time_limit',
  ): Promise<void> {
    const result = await trx
      .updateTable('jobs')
      .set({
        deadline_at: at?.toISOString() ?? null,
        deadline_reason: at ? reason : null,
        updated_at: this.#clock.now().toISOString(),
      })
      .where('id', '=', job.id)
      .where('lease_token', '=', job.leaseToken)
      .where('state', '=', 'running')
      .executeTakeFirst()
    if (Number(result.numUpdatedRows) !== 1) throw new StaleLeaseError(job.id)
  }

  /**
   * Finds running jobs whose lease expired (worker killed, host lost) and hands each to
   * `onExpired` in its own transaction, with whether it has attempts left. The callback
   * decides what the submission becomes; this puts the job back in its place or fails it.
   */
  async reap(
    onExpired: (trx: Transaction<Database>, job: Job, willRetry: boolean) => Promise<void>,
  ): Promise<number> {
    const now = this.#clock.now().toISOString()
    const expired = await this.db
      .selectFrom('jobs')
      .selectAll()
      .where('state', '=', 'running')
      .where('lease_expires_at', '<', now)
      .execute()

    return this.#takeBack(expired, async (trx, job) => {
      const willRetry = job.attempt < job.max_attempts
      const taken = await this.#endLease(trx, job, {
        state: willRetry ? 'waiting' : 'failed',
        last_error: `lease expired on worker ${job.worker_id ?? '?'} (attempt ${job.attempt})`,
      })
      if (taken) await onExpired(trx, job, willRetry)
      return taken
    })
  }

  /**
   * Finds running jobs past their stage deadline and fails each for good, handing it to
   * `onOverdue` in the same transaction. The worker still holding it loses its lease: its
   * next heartbeat fails and it stops the stage.
   */
  async reapOverdue(
    onOverdue: (trx: Transaction<Database>, job: Job) => Promise<void>,
  ): Promise<number> {
    const now = this.#clock.now().toISOString()
    const overdue = await this.db
      .selectFrom('jobs')
      .selectAll()
      .where('state', '=', 'running')
      .where('deadline_at', '<', now)
      .execute()

    return this.#takeBack(overdue, async (trx, job) => {
      const taken = await this.#endLease(trx, job, {
        state: 'failed',
        last_error: `stage deadline ${job.deadline_at ?? '?'} passed on worker ${job.worker_id ?? '?'}`,
      })
      if (taken) await onOverdue(trx, job)
      return taken
    })
  }

  async #takeBack(
    jobs: readonly Job[],
    each: (trx: Transaction<Database>, job: Job) => Promise<boolean>,
  ): Promise<number> {
    let count = 0
    for (const job of jobs) {
      if (await inTransaction(this.db, (trx) => each(trx, job))) count++
    }
    return count
  }

  /** Ends a lease someone else held; false if it changed meanwhile (renewed, finished). */
  async #endLease(
    trx: Transaction<Database>,
    job: Job,
    to: { state: 'waiting' | 'failed'; last_error: string },
  ): Promise<boolean> {
    const now = this.#clock.now().toISOString()
    const result = await trx
      .updateTable('jobs')
      .set({
        ...to,
        lease_token: null,
        lease_expires_at: null,
        worker_id: null,
        deadline_at: null,
        finished_at: to.state === 'failed' ? now : null,
        updated_at: now,
      })
      .where('id', '=', job.id)
      .where('lease_token', '=', job.lease_token)
      .where('state', '=', 'running')
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  /**
   * Fails every waiting or running job of a submission with `error`, in the caller's
   * transaction. A waiting job never starts; a running one loses its lease, so its worker's
   * next heartbeat or write is refused and it stops. Returns the jobs as they were.
   */
  async cancelJobs(trx: Transaction<Database>, submissionId: number, error: string): Promise<Job[]> {
    const jobs = await trx
      .selectFrom('jobs')
      .selectAll()
      .where('submission_id', '=', submissionId)
      .where('state', 'in', ['waiting', 'running'])
      .execute()
    if (jobs.length === 0) return []

    const now = this.#clock.now().toISOString()
    await trx
      .updateTable('jobs')
      .set({
        state: 'failed',
        last_error: error,
        lease_token: null,
        lease_expires_at: null,
        deadline_at: null,
        finished_at: now,
        updated_at: now,
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

  /**
   * Where a submission's waiting job stands in its queue: its position in the order the
   * queue would be served now, the jobs ahead and an estimated start. Null when the
   * submission has no waiting job.
   */
  async queuePosition(submissionId: number): Promise<QueuePosition | null> {
    return queuePosition(this.db, submissionId, this.#clock.now())
  }

  /** Jobs waiting and running per queue, and the oldest waiting one's age. */
  async depth(queue?: string): Promise<QueueDepth[]> {
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

    const now = this.#clock.now().getTime()
    return rows.map((r) => ({
      queue: r.queue,
      waiting: Number(r.waiting),
      running: Number(r.running),
      oldest: r.oldest,
      oldestAgeSeconds: r.oldest === null ? null : Math.max(0, (now - Date.parse(r.oldest)) / 1000),
    }))
  }

  /** Every queue that ever had a job, for `*` workers; re-read at most once a second. */
  async #allQueues(): Promise<string[]> {
    const cached = this.#queueList
    if (cached && performance.now() - cached.loadedAt < QUEUE_LIST_TTL_MS) return [...cached.names]

    const rows = await this.db.selectFrom('job_queues').select('queue').orderBy('queue').execute()
    const names = new Set(rows.map((r) => r.queue))
    this.#queueList = { names, loadedAt: performance.now() }
    return [...names]
  }

  #rotationFor(workerId: string): WeightedRotation {
    let rotation = this.#rotations.get(workerId)
    if (!rotation) {
      rotation = new WeightedRotation()
      this.#rotations.set(workerId, rotation)
      const oldest = this.#rotations.keys().next().value
      if (this.#rotations.size > MAX_ROTATIONS && oldest !== undefined) this.#rotations.delete(oldest)
    }
    return rotation
  }
}
