import { randomUUID } from 'node:crypto'

import type { Clock } from '../domain/clock.ts'
import type { Store } from '../store/database.ts'
import { parseJson } from '../store/transaction.ts'
import { reportingDb } from './tables.ts'
import type { OutboxMessage, OutboxPayload } from './target.ts'

/** A message a dispatcher holds. Every write about it carries `leaseToken`. */
export interface ClaimedMessage extends OutboxMessage {
  readonly leaseToken: string
}

export interface ClaimOptions {
  /** Targets this dispatcher can deliver to. */
  readonly targets: readonly string[]
  readonly limit: number
  readonly leaseMs: number
}

/**
 * The outbox's semantic operations: claim, delivered, retry later, defer, dead, release.
 *
 * Order: only a group's head (its oldest pending message) is claimable, and a claim leases
 * it. So one group is never delivered by two dispatchers at once and a message never
 * overtakes an earlier one: message n+1 becomes claimable only once n is delivered or dead.
 * A lease that expires (its dispatcher died) makes the head claimable again.
 *
 * SQLite serializes transactions on its one connection, so the select-then-update of a claim
 * is atomic; on PostgreSQL the heads are locked `for update skip locked`.
 */
export class OutboxStore {
  readonly #store: Store
  readonly #clock: Clock

  constructor(store: Store, clock: Clock) {
    this.#store = store
    this.#clock = clock
  }

  async claim(options: ClaimOptions): Promise<ClaimedMessage[]> {
    if (options.targets.length === 0 || options.limit <= 0) return []
    return this.#store.db.transaction().execute(async (trx) => {
      const rdb = reportingDb(trx)
      const now = this.#clock.now().toISOString()
      let query = rdb
        .selectFrom('outbox as o')
        .selectAll('o')
        .where('o.state', '=', 'pending')
        .where('o.target', 'in', [...options.targets])
        .where('o.next_attempt_at', '<=', now)
        .where((eb) =>
          eb.or([eb('o.lease_expires_at', 'is', null), eb('o.lease_expires_at', '<', now)]),
        )
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom('outbox as p')
                .select('p.id')
                .whereRef('p.target', '=', 'o.target')
                .whereRef('p.submission_id', '=', 'o.submission_id')
                .where('p.state', '=', 'pending')
                .whereRef('p.id', '<', 'o.id'),
            ),
          ),
        )
        .orderBy('o.next_attempt_at')
        .orderBy('o.id')
        .limit(options.limit)
      if (this.#store.dialect === 'postgres') query = query.forUpdate().skipLocked()
      const heads = await query.execute()

      const leaseExpiresAt = new Date(this.#clock.now().getTime() + options.leaseMs).toISOString()
      const claimed: ClaimedMessage[] = []
      for (const row of heads) {
        const leaseToken = randomUUID()
        const attempts = Number(row.attempts) + 1
        const updated = await rdb
          .updateTable('outbox')
          .set({ lease_token: leaseToken, lease_expires_at: leaseExpiresAt, attempts })
          .where('id', '=', row.id)
          .where('state', '=', 'pending')
          .where((eb) =>
            eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<', now)]),
          )
          .executeTakeFirst()
        if (Number(updated.numUpdatedRows) !== 1) continue
        claimed.push({
          id: Number(row.id),
          target: row.target,
          submissionId: Number(row.submission_id),
          attempt: attempts,
          payload: parseJson<OutboxPayload>(row.payload_json, {} as OutboxPayload),
          createdAt: row.created_at,
          leaseToken,
        })
      }
      return claimed
    })
  }

  /** The target has it. False when the lease was lost meanwhile (someone else has it). */
  async delivered(message: ClaimedMessage): Promise<boolean> {
    return this.#finish(message, {
      state: 'delivered',
      delivered_at: this.#clock.now().toISOString(),
      last_error: null,
    })
  }

  /** Try again after `delayMs`; the attempt counts. */
  async retryLater(message: ClaimedMessage, delayMs: number, error: string): Promise<boolean> {
    return this.#finish(message, {
      next_attempt_at: new Date(this.#clock.now().getTime() + delayMs).toISOString(),
      last_error: error,
    })
  }

  /** Try again at `until` (the target's throttle); the attempt does not count. */
  async defer(message: ClaimedMessage, until: Date): Promise<boolean> {
    return this.#finish(message, {
      next_attempt_at: until.toISOString(),
      attempts: message.attempt - 1,
    })
  }

  /** Refused for good: stops this message, recorded with the reason for an operator. */
  async dead(message: ClaimedMessage, error: string): Promise<boolean> {
    return this.#finish(message, {
      state: 'dead',
      dead_at: this.#clock.now().toISOString(),
      last_error: error,
    })
  }

  /** Gives the message back untried (a dispatcher stopping mid-delivery). */
  async release(message: ClaimedMessage): Promise<boolean> {
    return this.#finish(message, { attempts: message.attempt - 1 })
  }

  async #finish(
    message: ClaimedMessage,
    set: {
      state?: 'delivered' | 'dead'
      delivered_at?: string
      dead_at?: string
      next_attempt_at?: string
      last_error?: string | null
      attempts?: number
    },
  ): Promise<boolean> {
    const result = await reportingDb(this.#store.db)
      .updateTable('outbox')
      .set({ ...set, lease_token: null, lease_expires_at: null })
      .where('id', '=', message.id)
      .where('lease_token', '=', message.leaseToken)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }
}
