import type { Transaction } from 'kysely'

import type { AppContext } from '../app/context.ts'
import { ProctorError } from '../domain/errors.ts'
import type { Database } from '../store/schema.ts'
import { deliveryKey, type ForgeEvent, type TagPushEvent } from './forge-event.ts'
import { groupCommitterFor } from './group-commit.ts'

export type RecordResult =
  | { status: 'accepted'; eventId: number }
  | { status: 'ignored'; eventId: number; reason: string }
  | { status: 'duplicate'; eventId: number; submissionId: number | null; message: string }

/** The database could not store a delivery: answered 503 so the forge (or operator) retries. */
export class StoreUnavailableError extends ProctorError {
  constructor(cause: unknown) {
    super(
      'store_unavailable',
      'the database is unavailable, so the delivery was not stored; retry it when proctor is back',
      { cause },
    )
  }
}

/**
 * Stores one delivery and, for a new tag push, its intake job, in one transaction: a 2xx is
 * only ever answered for what is committed. Shared by the hook route and `proctor submit`.
 * Deliveries arriving together share one commit (group-commit.ts); each stays atomic.
 *
 * Dedup: the same forge and Idempotency-Key, or the same delivery key (forge, project, ref,
 * after), is a duplicate of the first event forever: its `duplicate_count` goes up and
 * nothing else happens. The insert is `on conflict do nothing`, so two identical deliveries
 * racing each other end as one accepted and one duplicate on either dialect, never an error.
 */
export async function recordForgeEvent(
  ctx: AppContext,
  forgeId: string,
  event: ForgeEvent,
): Promise<RecordResult> {
  let result: RecordResult
  try {
    result = await groupCommitterFor(ctx.store).run(async (trx) => {
      const byKey = event.idempotencyKey
        ? await trx
            .selectFrom('hook_events')
            .select('id')
            .where('forge', '=', forgeId)
            .where('idempotency_key', '=', event.idempotencyKey)
            .orderBy('id', 'asc')
            .executeTakeFirst()
        : undefined
      if (byKey) return markDuplicate(trx, byKey.id)

      if (event.kind === 'ignored') return insertIgnored(ctx, trx, forgeId, event)
      return insertTagPush(ctx, trx, forgeId, event)
    })
  } catch (err) {
    throw new StoreUnavailableError(err)
  }

  if (result.status === 'accepted') ctx.queue.wake()
  return result
}

async function insertTagPush(
  ctx: AppContext,
  trx: Transaction<Database>,
  forgeId: string,
  event: TagPushEvent,
): Promise<RecordResult> {
  const key = deliveryKey(forgeId, event)
  const inserted = await trx
    .insertInto('hook_events')
    .values({
      forge: forgeId,
      delivery_key: key,
      idempotency_key: event.idempotencyKey,
      event_kind: 'tag_push',
      status: 'pending',
      reason: null,
      project_id: event.projectId,
      project_path: event.projectPath,
      ref: event.ref,
      tag: event.tag,
      after_sha: event.after,
      checkout_sha: event.checkoutSha,
      pusher_forge_id: event.pusher.forgeUserId,
      pusher_username: event.pusher.username,
      received_at: ctx.clock.now().toISOString(),
    })
    .onConflict((oc) => oc.column('delivery_key').doNothing())
    .returning('id')
    .executeTakeFirst()

  if (!inserted) {
    const first = await trx
      .selectFrom('hook_events')
      .select('id')
      .where('delivery_key', '=', key)
      .executeTakeFirstOrThrow()
    return markDuplicate(trx, first.id)
  }

  const eventId = Number(inserted.id)
  await ctx.queue.enqueue(trx, {
    kind: 'intake',
    queue: 'intake',
    eventId,
    maxAttempts: ctx.config.worker.maxAttempts,
  })
  return { status: 'accepted', eventId }
}

async function insertIgnored(
  ctx: AppContext,
  trx: Transaction<Database>,
  forgeId: string,
  event: Extract<ForgeEvent, { kind: 'ignored' }>,
): Promise<RecordResult> {
  const now = ctx.clock.now().toISOString()
  const row = await trx
    .insertInto('hook_events')
    .values({
      forge: forgeId,
      delivery_key: null,
      idempotency_key: event.idempotencyKey,
      event_kind: event.eventKind,
      status: 'ignored',
      reason: event.reason,
      project_id: event.projectId ?? null,
      project_path: event.projectPath ?? null,
      ref: event.ref ?? null,
      tag: null,
      after_sha: event.after ?? null,
      checkout_sha: null,
      pusher_forge_id: event.pusher?.forgeUserId ?? null,
      pusher_username: event.pusher?.username ?? null,
      received_at: now,
      processed_at: now,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return { status: 'ignored', eventId: Number(row.id), reason: event.reason }
}

async function markDuplicate(trx: Transaction<Database>, eventId: number): Promise<RecordResult> {
  await trx
    .updateTable('hook_events')
    .set((eb) => ({ duplicate_count: eb('duplicate_count', '+', 1) }))
    .where('id', '=', eventId)
    .execute()
  const first = await trx
    .selectFrom('hook_events as e')
    .leftJoin('submissions as s', 's.id', 'e.submission_id')
    .select(['e.id', 'e.status', 'e.reason', 'e.submission_id', 's.state', 's.reason_code'])
    .where('e.id', '=', eventId)
    .executeTakeFirstOrThrow()

  const id = Number(first.id)
  const submissionId = first.submission_id === null ? null : Number(first.submission_id)
  let message = `already recorded as event ${id}`
  if (first.status === 'ignored') message += ` (ignored: ${first.reason ?? 'not a tag push'})`
  else if (submissionId !== null && first.state) {
    const reason = first.reason_code ? `: ${first.reason_code}` : ''
    message += `; submission ${submissionId} is ${first.state}${reason}`
  } else message += '; its submission is being created'
  return { status: 'duplicate', eventId: id, submissionId, message }
}
