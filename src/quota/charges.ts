import { sql } from 'kysely'

import type { ReasonCode } from '../domain/reasons.ts'
import type { Dialect } from '../store/database.ts'
import { inTransaction, type Executor } from '../store/transaction.ts'
import { releaseTime, windowBounds, type QuotaWindow } from './window.ts'

export interface QuotaScope {
  challengeId: string
  /** The round whose own quota applies, or null for the challenge's quota (see policy.ts). */
  roundId: string | null
  /** Who is charged: a participant's username, or `team:<name>`. */
  subject: string
  debug: boolean
}

export interface QuotaStatus {
  limit: number
  used: number
  remaining: number
  /** When the next used unit frees (ISO-8601 UTC), or null when none is in use. */
  nextFreeAt: string | null
  /**
   * When the subject can next be charged (ISO-8601 UTC): now when a unit is left, else when
   * enough used units have freed. Null when the limit is 0 (never).
   */
  nextSlotAt: string | null
  windowStart: string
}

/** How much quota a subject has used and when the next unit frees. Read-only. */
export async function quotaStatus(
  db: Executor,
  scope: QuotaScope,
  window: QuotaWindow,
  limit: number,
  now: Date,
): Promise<QuotaStatus> {
  const bounds = windowBounds(window, now)
  const rows = await db
    .selectFrom('quota_charges')
    .select(['charged_at'])
    .where('challenge_id', '=', scope.challengeId)
    .where('subject', '=', scope.subject)
    .where('debug', '=', scope.debug ? 1 : 0)
    .where((eb) =>
      scope.roundId === null ? eb('round_id', 'is', null) : eb('round_id', '=', scope.roundId),
    )
    .where('refunded_at', 'is', null)
    .where('charged_at', bounds.startInclusive ? '>=' : '>', bounds.start.toISOString())
    .where('charged_at', '<=', now.toISOString())
    .orderBy('charged_at', 'asc')
    .execute()

  const used = rows.length
  const releases = rows.map((row) => releaseTime(window, new Date(row.charged_at)).toISOString())
  const remaining = Math.max(0, limit - used)
  // With u used and a limit l, a slot opens once u − l + 1 of them have freed: the oldest
  // first, so at the release of the (u − l)th (0-based) in charge order.
  let nextSlotAt: string | null = null
  if (limit > 0) nextSlotAt = remaining > 0 ? now.toISOString() : (releases[used - limit] ?? null)
  return {
    limit,
    used,
    remaining,
    nextFreeAt: releases[0] ?? null,
    nextSlotAt,
    windowStart: bounds.start.toISOString(),
  }
}

export type ChargeResult =
  | { charged: true; status: QuotaStatus }
  | { charged: false; status: QuotaStatus }

/**
 * Checks and charges in one step. The count and the insert MUST be atomic, or two pushes
 * arriving together both see one unit left: this runs in the caller's transaction (or its
 * own) and first takes a lock covering the subject, so a second charge for the same subject
 * waits until the first commits and then counts it.
 *
 * - SQLite: a no-op write takes the database's write lock before anything is read (a
 *   transaction that reads first and writes later could act on a stale count, or fail with
 *   SQLITE_BUSY when another connection committed in between).
 * - PostgreSQL: a transaction-scoped advisory lock on the subject's key.
 *
 * Call it in a transaction that has not read anything yet when other connections may write
 * (more processes on one SQLite file); in one process, SQLite transactions run one at a time.
 */
export async function checkAndCharge(
  db: Executor,
  options: {
    scope: QuotaScope
    window: QuotaWindow
    limit: number
    submissionId: number
    now: Date
    dialect: Dialect
  },
): Promise<ChargeResult> {
  const { scope, window, limit, now } = options
  return inTransaction(db, async (trx) => {
    await lockSubject(trx, options.dialect, scope)

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
    const remaining = Math.max(0, limit - used)
    const release = releaseTime(window, now).toISOString()
    const charged: QuotaStatus = {
      ...status,
      used,
      remaining,
      nextFreeAt: status.nextFreeAt ?? release,
      // The unit just charged may be the one that has to free first (limit 1).
      nextSlotAt: remaining > 0 ? now.toISOString() : (status.nextFreeAt ?? release),
    }
    return { charged: true, status: charged }
  })
}

async function lockSubject(trx: Executor, dialect: Dialect, scope: QuotaScope): Promise<void> {
  if (dialect === 'postgres') {
    // PostgreSQL text cannot hold NUL bytes: the key is a JSON array instead.
    const key = JSON.stringify([scope.challengeId, scope.roundId, scope.subject, scope.debug])
    await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(trx)
    return
  }
  await trx
    .updateTable('quota_charges')
    .set({ id: sql<number>`id` })
    .where('id', '=', -1)
    .execute()
}

/** Gives back a submission's unit when proctor, not the participant, caused its failure. */
export async function refundCharge(
  db: Executor,
  submissionId: number,
  reason: ReasonCode,
  at: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('quota_charges')
    .set({ refunded_at: at.toISOString(), refund_reason: reason })
    .where('submission_id', '=', submissionId)
    .where('refunded_at', 'is', null)
    .executeTakeFirst()
  return Number(result.numUpdatedRows) > 0
}
