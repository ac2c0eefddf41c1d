import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'

import { sql, type Transaction } from 'kysely'

import type { Clock } from '../domain/clock.ts'
import type { ReasonCode } from '../domain/reasons.ts'
import type { Store } from '../store/database.ts'
import type { Database, Job } from '../store/schema.ts'
import { inTransaction, type Executor } from '../store/transaction.ts'
import { capabilityKey, servableCapabilityKeys } from './capabilities.ts'
import { advanceVirtualTime, claimFromQueue, ensureQueue, nextFairSeq } from './claim.ts'
import { queueDepth, queuePosition, type QueuePosition } from './queue-status.ts'
import { queueWeight, WeightedRotation } from './rotation.ts'
import { LEASE_CLEARED, recordRunTime, updateHeldJob } from './lease-writes.ts'
import { cancelJobs, reapExpired, reapOverdue } from './take-back.ts'
import {
  JOB_PRIORITY,
  StaleLeaseError,
  type ClaimedJob,
  type ClaimOptions,
  type EnqueueOptions,
  type QueueDepth,
} from './types.ts'

export { JOB_PRIORITY, StaleLeaseError } from './types.ts'
export type { ClaimedJob, ClaimOptions, EnqueueOptions, QueueDepth } from './types.ts'
export type { QueuePosition } from './queue-status.ts'

interface ClaimRequest {
  options: ClaimOptions
  capabilityKeys: readonly string[]
  /** The queues this claim may take from, before ordering. */
  served: readonly string[]
}

interface PendingClaim {
  request: ClaimRequest
  resolve: (job: ClaimedJob | null) => void
  reject: (err: unknown) => void
}

/** How long the list of queues a `*` worker serves is reused before it is read again. */
const QUEUE_LIST_TTL_MS = 1_000
/** How often a queue's average run time is refreshed at most. */
const RUN_TIME_REFRESH_MS = 1_000
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
  readonly #pendingClaims: PendingClaim[] = []
  #claiming = false
  readonly #vtimeSeen = new Map<string, number>()
  readonly #runTimeWrittenAt = new Map<string, number>()

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
   * claim.ts). The job is this worker's when the promise resolves, and no one else's.
   */
  async claim(options: ClaimOptions): Promise<ClaimedJob | null> {
    if (options.kinds?.length === 0) return null
    const request: ClaimRequest = {
      options,
      capabilityKeys: servableCapabilityKeys(options.capabilities),
      served: options.queues.includes('*') ? await this.#allQueues() : [...new Set(options.queues)],
    }
    for (const queue of request.served) queueWeight(options.queueWeights, queue)

    if (this.#store.dialect !== 'sqlite') {
      const written = new Map<string, number>()
      const job = await this.db.transaction().execute((trx) => this.#claimIn(trx, request, written))
      this.#noteVirtualTime(written)
      return job
    }
    return new Promise((resolve, reject) => {
      this.#pendingClaims.push({ request, resolve, reject })
      if (!this.#claiming) void this.#drainClaims()
    })
  }

  /**
   * SQLite runs one transaction at a time on its connection and each commit waits for an
   * fsync, so claims that arrive while the connection is busy are served together by the
   * next transaction, with one commit. A claim thus waits behind at most one other claim
   * transaction, however many slots are asking.
   */
  async #drainClaims(): Promise<void> {
    this.#claiming = true
    try {
      while (this.#pendingClaims.length > 0) {
        let batch: PendingClaim[] = []
        try {
          const written = new Map<string, number>()
          const claimed = await this.db.transaction().execute(async (trx) => {
            // Taken once the connection is ours: everything that queued meanwhile joins.
            batch = this.#pendingClaims.splice(0)
            const out: (ClaimedJob | null)[] = []
            for (const pending of batch) {
              out.push(await this.#claimIn(trx, pending.request, written))
            }
            return out
          })
          this.#noteVirtualTime(written)
          batch.forEach((pending, i) => pending.resolve(claimed[i] ?? null))
        } catch (err) {
          // The transaction did not commit: nothing was claimed. If it failed before taking
          // the batch (database down), fail everyone waiting rather than spin.
          if (batch.length === 0) batch = this.#pendingClaims.splice(0)
          for (const pending of batch) pending.reject(err)
        }
      }
    } finally {
      this.#claiming = false
    }
  }

  /** `written` collects the virtual times set in `trx`, to remember once it commits. */
  async #claimIn(
    trx: Transaction<Database>,
    request: ClaimRequest,
    written: Map<string, number>,
  ): Promise<ClaimedJob | null> {
    const { options } = request
    const rotation = this.#rotationFor(options.workerId)
    const order = rotation.order(request.served)
    const now = this.#clock.now()
    const lease = {
      workerId: options.workerId,
      token: randomUUID(),
      expiresAt: new Date(now.getTime() + options.leaseMs),
    }

    for (const [index, queue] of order.entries()) {
      const filter = { queue, now, kinds: options.kinds, capabilityKeys: request.capabilityKeys }
      const job = await claimFromQueue(trx, this.#store.dialect, filter, lease)
      if (!job) continue
      // Virtual time never goes down, so a claim at or below a value this process wrote
      // (and committed) cannot move it: skip the write, as most claims in a busy queue can.
      const seen = Math.max(this.#vtimeSeen.get(queue) ?? -1, written.get(queue) ?? -1)
      if (job.fair_seq > seen) {
        await advanceVirtualTime(trx, queue, job.fair_seq)
        written.set(queue, job.fair_seq)
      }
      rotation.served(queue, queueWeight(options.queueWeights, queue), order.slice(0, index))
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
        fairnessKey: job.fairness_key,
      }
    }
    return null
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
    const row = await updateHeldJob(trx, job, {
      ...LEASE_CLEARED,
      state,
      last_error: error,
      finished_at: now.toISOString(),
      updated_at: now.toISOString(),
    })
    if (row.claimed_at === null) return

    // Refreshed at most once a second per queue: a burst of short jobs does not pay a
    // write each, and estimates need no more.
    const last = this.#runTimeWrittenAt.get(row.queue) ?? Number.NEGATIVE_INFINITY
    if (performance.now() - last < RUN_TIME_REFRESH_MS) return
    this.#runTimeWrittenAt.set(row.queue, performance.now())
    await recordRunTime(trx, row.queue, Math.max(0, now.getTime() - Date.parse(row.claimed_at)))
  }

  /**
   * Puts the job back to wait `delayMs`, keeping its place (priority, fair turn and id are
   * unchanged). Its attempt count stays raised: the next claim raises it again.
   */
  async retry(trx: Executor, job: ClaimedJob, delayMs: number, error: string): Promise<void> {
    const now = this.#clock.now()
    await updateHeldJob(trx, job, {
      ...LEASE_CLEARED,
      state: 'waiting',
      run_after: new Date(now.getTime() + delayMs).toISOString(),
      last_error: error,
      worker_id: null,
      updated_at: now.toISOString(),
    })
  }

  /** Gives the job back without counting the attempt (graceful shutdown), in its place. */
  async release(job: ClaimedJob): Promise<void> {
    await updateHeldJob(this.db, job, {
      ...LEASE_CLEARED,
      state: 'waiting',
      attempt: sql<number>`attempt - 1`,
      worker_id: null,
      updated_at: this.#clock.now().toISOString(),
    })
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
    await updateHeldJob(trx, job, {
      deadline_at: at?.toISOString() ?? null,
      deadline_reason: at ? reason : null,
      updated_at: this.#clock.now().toISOString(),
    })
  }

  /**
   * Finds running jobs whose lease expired (worker killed, host lost) and hands each to
   * `onExpired` in its own transaction, with whether it has attempts left. The callback
   * decides what the submission becomes; this puts the job back in its place or fails it.
   */
  async reap(
    onExpired: (trx: Transaction<Database>, job: Job, willRetry: boolean) => Promise<void>,
  ): Promise<number> {
    return reapExpired(this.db, this.#clock.now(), onExpired)
  }

  /**
   * Finds running jobs past their stage deadline and fails each for good, handing it to
   * `onOverdue` in the same transaction. The worker still holding it loses its lease: its
   * next heartbeat fails and it stops the stage.
   */
  async reapOverdue(
    onOverdue: (trx: Transaction<Database>, job: Job) => Promise<void>,
  ): Promise<number> {
    return reapOverdue(this.db, this.#clock.now(), onOverdue)
  }

  /**
   * Fails every waiting or running job of a submission with `error`, in the caller's
   * transaction. A waiting job never starts; a running one loses its lease, so its worker's
   * next heartbeat or write is refused and it stops. Returns the jobs as they were.
   */
  async cancelJobs(
    trx: Transaction<Database>,
    submissionId: number,
    error: string,
  ): Promise<Job[]> {
    return cancelJobs(trx, submissionId, error, this.#clock.now())
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
    return queueDepth(this.db, this.#clock.now(), queue)
  }

  #noteVirtualTime(written: ReadonlyMap<string, number>): void {
    for (const [queue, vtime] of written) {
      this.#vtimeSeen.set(queue, Math.max(vtime, this.#vtimeSeen.get(queue) ?? -1))
    }
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
      if (this.#rotations.size > MAX_ROTATIONS && oldest !== undefined)
        this.#rotations.delete(oldest)
    }
    return rotation
  }
}
