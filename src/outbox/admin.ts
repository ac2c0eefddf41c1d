import type { Clock } from '../domain/clock.ts'
import type { Store } from '../store/database.ts'
import type { OutboxState } from '../store/schema.ts'
import { parseJson } from '../store/transaction.ts'
import { reportingDb } from './tables.ts'
import type { OutboxPayload } from './target.ts'

export interface OutboxListOptions {
  readonly state?: OutboxState
  readonly target?: string
  readonly submissionId?: number
  readonly limit: number
  /** Rows with a smaller id (paging backwards). */
  readonly before?: number
}

/** An outbox message as operators see it. */
export interface OutboxEntry {
  id: number
  target: string
  submissionId: number
  event: string | null
  state: OutboxState
  attempts: number
  nextAttemptAt: string
  leaseExpiresAt: string | null
  lastError: string | null
  createdAt: string
  deliveredAt: string | null
  deadAt: string | null
  payload: OutboxPayload
}

export async function listOutbox(store: Store, options: OutboxListOptions): Promise<OutboxEntry[]> {
  let query = reportingDb(store.db)
    .selectFrom('outbox')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(options.limit)
  if (options.state) query = query.where('state', '=', options.state)
  if (options.target) query = query.where('target', '=', options.target)
  if (options.submissionId) query = query.where('submission_id', '=', options.submissionId)
  if (options.before) query = query.where('id', '<', options.before)
  const rows = await query.execute()
  return rows.map((row) => ({
    id: Number(row.id),
    target: row.target,
    submissionId: Number(row.submission_id),
    event: row.event,
    state: row.state,
    attempts: Number(row.attempts),
    nextAttemptAt: row.next_attempt_at,
    leaseExpiresAt: row.lease_expires_at,
    lastError: row.last_error,
    createdAt: row.created_at,
    deliveredAt: row.delivered_at,
    deadAt: row.dead_at,
    payload: parseJson<OutboxPayload>(row.payload_json, {} as OutboxPayload),
  }))
}

export type RetryResult =
  | { ok: true }
  | { ok: false; reason: 'not_found' | 'not_dead' | 'overtaken'; message: string }

/**
 * Puts a dead message back to pending, to be delivered as soon as a dispatcher claims it.
 *
 * Refused when a later message of the same (target, submission) was delivered or is being
 * delivered: sending this one now would put an older state after a newer one (say,
 * `evaluating` after `scored`). The later message already told the target where things are.
 */
export async function retryDeadMessage(
  store: Store,
  id: number,
  clock: Clock,
): Promise<RetryResult> {
  return store.db.transaction().execute(async (trx) => {
    const rdb = reportingDb(trx)
    const now = clock.now().toISOString()
    let select = rdb.selectFrom('outbox').selectAll().where('id', '=', id)
    if (store.dialect === 'postgres') select = select.forUpdate()
    const row = await select.executeTakeFirst()
    if (!row) return { ok: false, reason: 'not_found', message: `no outbox message ${id}` }
    if (row.state !== 'dead') {
      return {
        ok: false,
        reason: 'not_dead',
        message: `outbox message ${id} is ${row.state}, not dead; only dead messages are retried`,
      }
    }

    let later = rdb
      .selectFrom('outbox')
      .select(['id', 'state'])
      .where('target', '=', row.target)
      .where('submission_id', '=', row.submission_id)
      .where('id', '>', row.id)
      .where((eb) =>
        eb.or([
          eb('state', '=', 'delivered'),
          eb.and([eb('state', '=', 'pending'), eb('lease_expires_at', '>=', now)]),
        ]),
      )
      .orderBy('id')
      .limit(1)
    if (store.dialect === 'postgres') later = later.forUpdate()
    const overtaking = await later.executeTakeFirst()
    if (overtaking) {
      return {
        ok: false,
        reason: 'overtaken',
        message:
          `outbox message ${overtaking.id} for the same submission and target was ${overtaking.state === 'delivered' ? 'delivered' : 'being delivered'} ` +
          `after ${id}; sending ${id} now would put an older update after a newer one`,
      }
    }

    await rdb
      .updateTable('outbox')
      .set({
        state: 'pending',
        attempts: 0,
        next_attempt_at: now,
        dead_at: null,
        lease_token: null,
        lease_expires_at: null,
        last_error: row.last_error ? `retried by an operator; was dead: ${row.last_error}` : null,
      })
      .where('id', '=', id)
      .execute()
    return { ok: true }
  })
}

/** Counts by state, for status pages. */
export async function outboxCounts(store: Store): Promise<Record<OutboxState, number>> {
  const rows = await store.db
    .selectFrom('outbox')
    .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy('state')
    .execute()
  const counts: Record<OutboxState, number> = { pending: 0, delivered: 0, dead: 0 }
  for (const row of rows) counts[row.state] = Number(row.n)
  return counts
}
