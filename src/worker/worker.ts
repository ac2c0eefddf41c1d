import { hostname } from 'node:os'
import { randomUUID } from 'node:crypto'

import type { Logger } from 'pino'

import type { AppContext } from '../app/context.ts'
import { errorMessage, InfrastructureError, SubmissionFailure } from '../domain/errors.ts'
import { abandonIntake } from '../intake/intake-job.ts'
import { StaleLeaseError, type ClaimedJob } from '../queue/job-queue.ts'
import type { JobKind } from '../store/schema.ts'
import { moveSubmission, noteSubmission } from '../submissions/transitions.ts'
import { backoffMs } from './backoff.ts'
import { reapExpiredJobs } from './reaper.ts'

/** What a worker does with a claimed job. Handlers own their job's outcome on success. */
export type JobHandler = (job: ClaimedJob, signal: AbortSignal, log: Logger) => Promise<void>

export interface WorkerOptions {
  slots: number
  queues: readonly string[]
  capabilities: readonly string[]
  /** Shares of this worker per queue when several have work (default 1 each). */
  queueWeights?: Readonly<Record<string, number>>
  kinds?: readonly JobKind[]
  handlers: Partial<Record<JobKind, JobHandler>>
  /** How often an idle slot looks for work when nothing woke it. */
  pollMs?: number
  reapEveryMs?: number
  /** Asked before each claim; false keeps the slot idle (low disk: src/scale/disk-guard.ts). */
  canTakeJobs?: () => Promise<boolean>
}

/**
 * The worker loop: N slots, each claiming one job at a time with a lease it heartbeats.
 *
 * Invariants:
 * - a claimed job is completed, failed, retried or released on every path; if this process
 *   dies instead, the lease expires and the reaper puts the job back (or fails it);
 * - when a heartbeat finds the lease gone (reaped, cancelled), the job's signal aborts and
 *   its containers are killed: a worker that lost its lease never writes again.
 */
export class Worker {
  readonly id: string
  readonly #ctx: AppContext
  readonly #options: WorkerOptions
  readonly #log: Logger
  readonly #running = new Map<number, { job: ClaimedJob; abort: AbortController }>()
  #stopping = false
  #loops: Promise<void>[] = []
  #wakeUp: (() => void) | null = null
  #reapTimer: NodeJS.Timeout | undefined
  #unsubscribe: (() => void) | undefined

  constructor(ctx: AppContext, options: WorkerOptions) {
    this.#ctx = ctx
    this.#options = options
    this.id = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`
    this.#log = ctx.log.child({ workerId: this.id })
  }

  get leaseMs(): number {
    return this.#ctx.config.worker.leaseSeconds * 1000
  }

  async start(): Promise<void> {
    const { store, clock } = this.#ctx
    const now = clock.now().toISOString()
    await store.db
      .insertInto('workers')
      .values({
        id: this.id,
        host: hostname(),
        queues_json: JSON.stringify(this.#options.queues),
        capabilities_json: JSON.stringify(this.#options.capabilities),
        slots: this.#options.slots,
        state: 'alive',
        started_at: now,
        heartbeat_at: now,
      })
      .execute()

    this.#unsubscribe = this.#ctx.queue.onWake(() => this.#wakeUp?.())
    this.#reapTimer = setInterval(() => void this.#reap(), this.#options.reapEveryMs ?? 5_000)
    await this.#reap()
    this.#log.info(
      {
        slots: this.#options.slots,
        queues: this.#options.queues,
        capabilities: this.#options.capabilities,
      },
      'worker started',
    )
    for (let slot = 0; slot < this.#options.slots; slot++) this.#loops.push(this.#loop(slot))
  }

  /**
   * Stops taking jobs. Graceful: running jobs finish. Immediate: running jobs are aborted
   * and released so another worker takes them at once.
   */
  async stop(mode: 'graceful' | 'immediate' = 'graceful'): Promise<void> {
    this.#stopping = true
    this.#wakeUp?.()
    clearInterval(this.#reapTimer)
    this.#unsubscribe?.()
    if (mode === 'immediate')
      for (const { abort } of this.#running.values()) abort.abort(new Error('worker stopping'))
    await Promise.allSettled(this.#loops)
    await this.#ctx.store.db
      .updateTable('workers')
      .set({ state: 'stopped', heartbeat_at: this.#ctx.clock.now().toISOString() })
      .where('id', '=', this.id)
      .execute()
    this.#log.info('worker stopped')
  }

  async #loop(slot: number): Promise<void> {
    while (!this.#stopping) {
      if (this.#options.canTakeJobs && !(await this.#options.canTakeJobs())) {
        await this.#idle()
        continue
      }
      let job: ClaimedJob | null = null
      try {
        job = await this.#ctx.queue.claim({
          workerId: this.id,
          queues: this.#options.queues,
          capabilities: this.#options.capabilities,
          kinds: this.#options.kinds ?? (Object.keys(this.#options.handlers) as JobKind[]),
          leaseMs: this.leaseMs,
          queueWeights: this.#options.queueWeights,
        })
      } catch (err) {
        // The database is down or busy: wait and try again, never crash the loop.
        this.#log.warn({ err: errorMessage(err), slot }, 'could not claim a job; retrying shortly')
      }
      if (!job) {
        await this.#idle()
        continue
      }
      await this.#run(job)
    }
  }

  #idle(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.#options.pollMs ?? 500)
      const previous = this.#wakeUp
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.#wakeUp = () => {
        previous?.()
        done()
      }
    })
  }

  async #run(job: ClaimedJob): Promise<void> {
    const log = this.#log.child({
      jobId: job.id,
      kind: job.kind,
      attempt: job.attempt,
      submissionId: job.submissionId ?? undefined,
    })
    const handler = this.#options.handlers[job.kind]
    const abort = new AbortController()
    this.#running.set(job.id, { job, abort })
    // Six beats a lease: a database outage of half the lease still leaves two beats to land.
    const heartbeat = setInterval(
      () => void this.#heartbeat(job, abort, log),
      Math.max(1_000, this.leaseMs / 6),
    )
    const started = Date.now()

    try {
      if (!handler) throw new InfrastructureError(`this worker has no handler for ${job.kind} jobs`)
      log.debug('job started')
      await handler(job, abort.signal, log)
      log.info({ ms: Date.now() - started }, 'job finished')
    } catch (err) {
      await this.#handleFailure(job, err, log)
    } finally {
      clearInterval(heartbeat)
      this.#running.delete(job.id)
    }
  }

  async #heartbeat(job: ClaimedJob, abort: AbortController, log: Logger): Promise<void> {
    try {
      const held = await this.#ctx.queue.heartbeat(job, this.leaseMs)
      await this.#ctx.store.db
        .updateTable('workers')
        .set({ heartbeat_at: this.#ctx.clock.now().toISOString(), state: 'alive' })
        .where('id', '=', this.id)
        .execute()
      if (!held) {
        log.warn('lease lost (the job was cancelled or reaped); stopping it')
        abort.abort(new StaleLeaseError(job.id))
      }
    } catch (err) {
      // A missed heartbeat is not fatal: the lease outlasts a short database outage.
      log.warn({ err: errorMessage(err) }, 'heartbeat failed; will try again')
    }
  }

  /**
   * Anything a handler throws that is not a participant's failure is proctor's: retry with
   * backoff while attempts remain, then fail the submission `infrastructure` (refunded).
   */
  async #handleFailure(job: ClaimedJob, err: unknown, log: Logger): Promise<void> {
    if (
      err instanceof StaleLeaseError ||
      (err instanceof Error && err.cause instanceof StaleLeaseError)
    ) {
      log.warn('job abandoned: lease lost')
      return
    }
    if (this.#stopping && job.kind === 'evaluate') {
      await this.#ctx.queue.release(job).catch(() => undefined)
      log.info('job released for another worker (shutting down)')
      return
    }

    const message = errorMessage(err)
    const willRetry = job.attempt < job.maxAttempts && !(err instanceof SubmissionFailure)
    const delay = backoffMs(job.attempt)
    const now = this.#ctx.clock.now()
    try {
      await this.#ctx.queue.withLease(job, async (trx) => {
        if (willRetry) await this.#ctx.queue.retry(trx, job, delay, message)
        else await this.#ctx.queue.fail(trx, job, message)
        // An intake job out of attempts must not leave its submission `received` forever.
        if (!willRetry && job.kind === 'intake' && job.eventId !== null) {
          await abandonIntake(this.#ctx, trx, job.eventId, message)
        }
        if (job.submissionId === null) return

        const submission = await trx
          .selectFrom('submissions')
          .select(['state'])
          .where('id', '=', job.submissionId)
          .executeTakeFirst()
        if (!submission || ['scored', 'failed', 'cancelled', 'rejected'].includes(submission.state))
          return
        if (willRetry && job.kind === 'evaluate' && submission.state === 'queued') {
          await noteSubmission(trx, job.submissionId, {
            message: `proctor hit a problem of its own (${message}); retrying, attempt ${job.attempt + 1} of ${job.maxAttempts}, in ${Math.round(delay / 1000)} s`,
            actor: `worker:${this.id}`,
            at: now,
          })
        } else if (willRetry && job.kind === 'evaluate') {
          await moveSubmission(trx, job.submissionId, {
            to: 'queued',
            message: `proctor hit a problem of its own (${message}); retrying, attempt ${job.attempt + 1} of ${job.maxAttempts}, in ${Math.round(delay / 1000)} s`,
            actor: `worker:${this.id}`,
            at: now,
            set: { attempt: job.attempt + 1, stage: null },
          })
        } else if (!willRetry) {
          await moveSubmission(trx, job.submissionId, {
            to: 'failed',
            reasonCode: 'infrastructure',
            message: `proctor could not process this submission after ${job.attempt} attempts: ${message}. Your quota unit was refunded.`,
            actor: `worker:${this.id}`,
            at: now,
          })
        }
      })
    } catch (writeErr) {
      log.warn(
        { err: errorMessage(writeErr) },
        'could not record the failure; the lease will expire and the reaper will retry',
      )
    }
    const level = willRetry ? 'warn' : 'error'
    log[level](
      {
        err: message,
        stack: err instanceof Error && !(err instanceof SubmissionFailure) ? err.stack : undefined,
        delayMs: willRetry ? delay : undefined,
      },
      willRetry
        ? 'job failed; retrying'
        : 'job failed for good; an operator should look at the cause',
    )
  }

  async #reap(): Promise<void> {
    try {
      await reapExpiredJobs(this.#ctx)
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'reaper pass failed; will try again')
    }
  }
}
