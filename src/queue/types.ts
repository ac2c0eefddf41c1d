import { ProctorError } from '../domain/errors.ts'
import type { JobKind } from '../store/schema.ts'

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
  /** Whose job it is (for logs); the same on every claim of the job. */
  readonly fairnessKey?: string | null
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
