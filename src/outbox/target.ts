import { ProctorError } from '../domain/errors.ts'
import type { SubmissionState } from '../domain/states.ts'

/** What one outbox message says, as written in the transaction of the change. */
export interface OutboxPayload {
  readonly v: 1
  /** `announced`: the submission exists. `state`: it moved. `progress`: it is further along. */
  readonly event: 'announced' | 'state' | 'progress'
  readonly state: SubmissionState
  readonly previousState: SubmissionState | null
  readonly reasonCode: string | null
  /** Participant-facing words about the change (the status detail). */
  readonly message: string
  readonly score: number | null
  readonly scoreSecondary: number | null
  readonly stage: string | null
  /** 0..1 when known. */
  readonly progress: number | null
  readonly attempt: number
  readonly evaluationId: number | null
  /** When the change happened (ISO-8601 UTC). */
  readonly at: string
}

/** A message a dispatcher holds, handed to its target. */
export interface OutboxMessage {
  /** The outbox row id. Also the idempotency key: a target drops a key it has seen. */
  readonly id: number
  readonly target: string
  readonly submissionId: number
  /** 1 for the first delivery attempt. */
  readonly attempt: number
  readonly payload: OutboxPayload
  readonly createdAt: string
}

/**
 * The answer of a delivery that did not throw: done, or not yet (the target asks to be
 * called again at `until` without counting an attempt: a throttle).
 */
export type DeliveryResult = { outcome: 'delivered' } | { outcome: 'deferred'; until: Date }

export const DELIVERED: DeliveryResult = { outcome: 'delivered' }

/**
 * Where messages go. `deliver` returns when the target has the message, throws
 * PermanentDeliveryError when it refuses it for good, and throws anything else for trouble
 * worth retrying (unreachable, timeout, 5xx, 408, 429). It must be safe to call twice with
 * the same message: a lease can expire while a slow call is still running.
 */
export interface OutboxTarget {
  readonly id: string
  deliver(message: OutboxMessage, signal: AbortSignal): Promise<DeliveryResult>
}

/** The target refused the message (a 4xx other than 408 and 429): retrying cannot help. */
export class PermanentDeliveryError extends ProctorError {
  readonly status: number | null

  constructor(message: string, options: { status?: number | null; cause?: unknown } = {}) {
    super('delivery_refused', message, { cause: options.cause })
    this.status = options.status ?? null
  }
}

/** The target could not take the message now: retried with backoff. */
export class TransientDeliveryError extends ProctorError {
  readonly status: number | null

  constructor(message: string, options: { status?: number | null; cause?: unknown } = {}) {
    super('delivery_failed', message, { cause: options.cause })
    this.status = options.status ?? null
  }
}

/** 2xx and 3xx are success; 408, 429 and 5xx are worth retrying; other 4xx are refusals. */
export function isPermanentStatus(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429
}
