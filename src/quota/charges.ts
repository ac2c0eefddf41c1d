import type { ReasonCode } from '../domain/reasons.ts'
import type { Executor } from '../store/transaction.ts'
import { releaseTime, windowBounds, type QuotaWindow } from './window.ts'

export interface QuotaScope {
  challengeId: string
  roundId: string | null
  /** Who is charged: a participant's username, or `team:<name>`. */
  subject: string
  debug: boolean
}

export interface QuotaStatus {
  limit: number
  used: number
  remaining: number
  /** When the next unit frees (ISO-8601 UTC), or null when none is in use. */
  nextFreeAt: string | null
  windowStart: string
}

/** How much quota a subject has used and when the next unit frees. Read-only. */
export async function quotaStatus(db: Executor, scope: QuotaScope, window: QuotaWindow, limit: number, now: Date): Promise<QuotaStatus> {
  const bounds = windowBounds(window, now)
  const rows = await db
    .selectFrom('quota_charges')
    .select(['charged_at'])
    .where('challenge_id', '=', scope.challengeId)
    .where('subject', '=', scope.subject)
    .where('debug', '=', scope.debug ? 1 : 0)
    .where((eb) => (scope.roundId === null ? eb('round_id', 'is', null) : eb('round_id', '=', scope.roundId)))
    .where('refunded_at', 'is', null)
    .where('charged_at', bounds.startInclusive ? '>=' : '>', bounds.start.toISOString())
    .where('charged_at', '<=', now.toISOString())
    .orderBy('charged_at', 'asc')
    .execute()

  const used = rows.length
  const oldest = rows[0]?.charged_at
  return {
    limit,
    used,
    remaining: Math.max(0, limit - used),
    nextFreeAt: oldest ? releaseTime(window, new Date(oldest)).toISOString() : null,
    windowStart: bounds.start.toISOString(),
  }
}

export type ChargeResult =
  | { charged: true; status: QuotaStatus }
  | { charged: false; status: QuotaStatus }

/**
 * Checks and charges in one step. The caller MUST pass an open transaction: the count and
 * the insert have to be atomic, or two pushes arriving together both see one unit left.
 * SQLite serializes transactions on its single connection; PostgreSQL takes a transaction
 * advisory lock on the subject first.
 */
export async function checkAndCharge(
  trx: Executor,
  options: { scope: QuotaScope; window: QuotaWindow; limit: number; submissionId: number; now: Date; dialect: 'sqlite' | 'postgres' },
): Promise<ChargeResult> {
  const { scope, window, limit, now } = options
  if (options.dialect === 'postgres') {
    const { sql } = await import('kysely')
    const key = `${scope.challengeId}\0${scope.roundId ?? ''}\0${scope.subject}`
    await sql`select pg_advisory_xact_lock(hashtext(${key}))`.execute(trx)
  }

  const status = await quotaStatus(trx, scope, window, limit, now)
  if (status.remaining <= 0) return { charged: false, status }

  await trx
    .insertInto('quota_charges')
    .values({
      challenge_id: scope.challengeId,
      round_id: scope.roundId,
      subject: scope.subject,
      debug: scope.debug ? 1 : 0,
      submission_id: options.submissionId,
      charged_at: now.toISOString(),
    })
    .execute()
  const used = status.used + 1
  const nextFreeAt = status.nextFreeAt ?? releaseTime(window, now).toISOString()
  return { charged: true, status: { ...status, used, remaining: Math.max(0, limit - used), nextFreeAt } }
}

/** Gives back a submission's unit when proctor, not the participant, caused its failure. */
export async function refundCharge(db: Executor, submissionId: number, reason: ReasonCode, at: Date): Promise<boolean> {
  const result = await db
    .updateTable('quota_charges')
    .set({ refunded_at: at.toISOString(), refund_reason: reason })
    .where('submission_id', '=', submissionId)
    .where('refunded_at', 'is', null)
    .executeTakeFirst()
  return Number(result.numUpdatedRows) > 0
}
