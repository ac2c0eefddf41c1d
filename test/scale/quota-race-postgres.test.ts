import { setTimeout as sleep } from 'node:timers/promises'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { checkAndCharge, quotaStatus } from '../../src/quota/charges.ts'
import type { Store } from '../../src/store/database.ts'
import { RACE_LIMIT, RACE_WINDOW, raceScope, unitsHeld } from '../quota/support/race-harness.ts'
import { createPostgresTestStore, reopenPostgresTestStore } from '../support/postgres.ts'

/**
 * The quota race on PostgreSQL, with every racer on its own pool (as separate API or worker
 * processes are): a subject with one unit left pushes twice, or 20 times, at the same
 * instant, 50 times over. Exactly one push may be charged each time. The control runs the
 * same transaction without the advisory lock: it must over-charge, or the harness would not
 * be racing at all.
 */
const REPETITIONS = 50
const NOW = new Date('2026-03-10T12:00:00Z')
const EARLIER = new Date('2026-03-10T09:00:00Z')
/** The control's pause between counting and inserting: both racers count before either writes. */
const CONTROL_PAUSE_MS = 20

type Variant = 'advisory-lock' | 'no-lock'

interface Outcome {
  charged: number[]
  overCharged: number
  errors: string[]
}

describe('quota check-and-charge on PostgreSQL through separate pools', () => {
  let store: Store
  const pools: Store[] = []
  let nextSubmission = 10_000

  beforeAll(async () => {
    store = await createPostgresTestStore('quota race postgres')
    for (let i = 0; i < 20; i++) pools.push(await reopenPostgresTestStore(store))
  })
  afterAll(async () => {
    for (const pool of pools) await pool.close()
    await store.close()
  })

  async function race(variant: Variant, racers: number): Promise<Outcome> {
    const outcome: Outcome = { charged: [], overCharged: 0, errors: [] }
    for (let rep = 0; rep < REPETITIONS; rep++) {
      const subject = `${variant}-${racers}-${rep}`
      await leaveOneUnit(subject)
      const results = await Promise.allSettled(
        pools.slice(0, racers).map((pool) => chargeOnce(pool, variant, subject, nextSubmission++)),
      )
      for (const r of results) if (r.status === 'rejected') outcome.errors.push(String(r.reason))
      const charged = results.filter((r) => r.status === 'fulfilled' && r.value).length
      outcome.charged.push(charged)
      if (charged > 1 || (await unitsHeld(store, subject)) > RACE_LIMIT) outcome.overCharged++
    }
    return outcome
  }

  /** One unit of RACE_LIMIT (2) used three hours ago: exactly one is left. */
  async function leaveOneUnit(subject: string): Promise<void> {
    await store.db
      .insertInto('quota_charges')
      .values({
        challenge_id: 'iris',
        round_id: null,
        subject,
        submission_id: nextSubmission++,
        charged_at: EARLIER.toISOString(),
      })
      .execute()
  }

  it('charges exactly one of two simultaneous pushes for the last unit, 50 times over', async () => {
    const outcome = await race('advisory-lock', 2)

    expect(outcome.errors).toEqual([])
    expect(outcome.charged).toEqual(Array(REPETITIONS).fill(1))
    expect(outcome.overCharged).toBe(0)
  })

  it('charges exactly one of 20 simultaneous pushes for the last unit, 50 times over', async () => {
    const outcome = await race('advisory-lock', 20)

    expect(outcome.errors).toEqual([])
    expect(outcome.charged).toEqual(Array(REPETITIONS).fill(1))
    expect(outcome.overCharged).toBe(0)
  })

  it('over-charges without the advisory lock, so the harness races for real', async () => {
    const two = await race('no-lock', 2)
    const twenty = await race('no-lock', 20)

    expect(two.errors).toEqual([])
    expect(two.overCharged).toBeGreaterThan(REPETITIONS / 2)
    expect(Math.max(...twenty.charged)).toBeGreaterThan(1)
    console.info(
      `without the advisory lock: over-charged ${two.overCharged}/${REPETITIONS} with 2 racers, ` +
        `${twenty.overCharged}/${REPETITIONS} with 20 (up to ${Math.max(...twenty.charged)} charged at once)`,
    )
  })
})

/** Proctor's check-and-charge, or the same transaction without the lock (the control). */
async function chargeOnce(
  pool: Store,
  variant: Variant,
  subject: string,
  submissionId: number,
): Promise<boolean> {
  const scope = raceScope(subject)
  if (variant === 'advisory-lock') {
    const result = await checkAndCharge(pool.db, {
      scope,
      window: RACE_WINDOW,
      limit: RACE_LIMIT,
      submissionId,
      now: NOW,
      dialect: pool.dialect,
    })
    return result.charged
  }

  return pool.db.transaction().execute(async (trx) => {
    const status = await quotaStatus(trx, scope, RACE_WINDOW, RACE_LIMIT, NOW)
    await sleep(CONTROL_PAUSE_MS)
    if (status.remaining <= 0) return false
    await trx
      .insertInto('quota_charges')
      .values({
        challenge_id: scope.challengeId,
        round_id: null,
        subject: scope.subject,
        submission_id: submissionId,
        charged_at: NOW.toISOString(),
      })
      .execute()
    return true
  })
}
