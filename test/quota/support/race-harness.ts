import { setTimeout as sleep } from 'node:timers/promises'

import { checkAndCharge, quotaStatus, type QuotaScope } from '../../../src/quota/charges.ts'
import { parseWindow } from '../../../src/quota/window.ts'
import type { Store } from '../../../src/store/database.ts'

/**
 * The two ways to charge a unit that the race tests compare. `atomic` is proctor's; the
 * two-step one reads in one statement and inserts in another with a pause between, as a
 * naive implementation would: the tests require it to over-charge, which proves the harness
 * really runs charges at the same time.
 */
export type ChargeVariant = 'atomic' | 'two-step'

export const RACE_LIMIT = 2
export const RACE_WINDOW = parseWindow({ window: '24h' })

export function raceScope(subject: string): QuotaScope {
  return { challengeId: 'iris', roundId: null, subject, debug: false }
}

export async function charge(
  store: Store,
  variant: ChargeVariant,
  request: { subject: string; submissionId: number; now: Date },
): Promise<boolean> {
  const scope = raceScope(request.subject)
  if (variant === 'atomic') {
    const result = await checkAndCharge(store.db, {
      scope,
      window: RACE_WINDOW,
      limit: RACE_LIMIT,
      submissionId: request.submissionId,
      now: request.now,
      dialect: store.dialect,
    })
    return result.charged
  }

  const status = await quotaStatus(store.db, scope, RACE_WINDOW, RACE_LIMIT, request.now)
  await sleep(20)
  if (status.remaining <= 0) return false
  await store.db
    .insertInto('quota_charges')
    .values({
      challenge_id: scope.challengeId,
      round_id: null,
      subject: scope.subject,
      submission_id: request.submissionId,
      charged_at: request.now.toISOString(),
    })
    .execute()
  return true
}

/** Units a subject holds (not refunded). */
export async function unitsHeld(store: Store, subject: string): Promise<number> {
  const row = await store.db
    .selectFrom('quota_charges')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('subject', '=', subject)
    .where('refunded_at', 'is', null)
    .executeTakeFirstOrThrow()
  return Number(row.n)
}
