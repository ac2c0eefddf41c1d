import { setTimeout as sleep } from 'node:timers/promises'

import type { AppContext } from '../app/context.ts'
import { BadRequestError, InfrastructureError } from '../domain/errors.ts'
import type { ReasonCode } from '../domain/reasons.ts'
import type { ClaimedJob } from '../queue/job-queue.ts'
import { inTransaction } from '../store/transaction.ts'

/**
 * Pausing proctor's pushes to the archive while the registry collects garbage.
 *
 * Garbage collection deletes every blob no manifest references; a push in flight has
 * uploaded blobs whose manifest is not written yet, so it must not overlap. The `registry`
 * row of `maintenance` says whether pushes are paused, and `archive_pushes` lists the pushes
 * in flight: a push takes a permit (refused while paused), garbage collection pauses and
 * then waits until no permit is left.
 *
 *   await withPushPermit(ctx, () => pushImage(docker, options), { signal, job, holder })
 *
 * A push that meets a pause waits (its job's stage deadline is pushed back by the time it
 * waited) and goes on when the pause ends: nothing fails.
 */
export const REGISTRY_SWITCH = 'registry'
/** How often a waiting push looks at the switch, and how often a permit is refreshed. */
const POLL_MS = 1_000
const PERMIT_HEARTBEAT_MS = 10_000
/** A permit not refreshed for this long belongs to a process that died. */
export const STALE_PERMIT_MS = 60_000

export interface PauseState {
  readonly paused: boolean
  readonly reason: string | null
  readonly requestedBy: string | null
  readonly since: string | null
}

export async function pushPauseState(ctx: AppContext): Promise<PauseState> {
  const row = await ctx.store.db
    .selectFrom('maintenance')
    .selectAll()
    .where('key', '=', REGISTRY_SWITCH)
    .executeTakeFirst()
  return {
    paused: Number(row?.paused ?? 0) === 1,
    reason: row?.reason ?? null,
    requestedBy: row?.requested_by ?? null,
    since: row?.since ?? null,
  }
}

/**
 * Pauses pushes. Refused (409) when they are already paused: another garbage collection or
 * an operator holds the switch, and two must not interleave.
 */
export async function pausePushes(ctx: AppContext, by: string, reason: string): Promise<void> {
  const now = ctx.clock.now().toISOString()
  await inTransaction(ctx.store.db, async (trx) => {
    const row = await trx
      .selectFrom('maintenance')
      .selectAll()
      .where('key', '=', REGISTRY_SWITCH)
      .executeTakeFirst()
    if (Number(row?.paused ?? 0) === 1) {
      throw new BadRequestError(
        `pushes to the archive are already paused by ${row?.requested_by ?? 'someone'} since ${row?.since ?? '?'} (${row?.reason ?? 'no reason given'}); wait for that to end, or resume them with \`proctor gc --resume\` if it was abandoned`,
        409,
        'pushes_paused',
      )
    }
    await trx
      .insertInto('maintenance')
      .values({
        key: REGISTRY_SWITCH,
        paused: 1,
        reason,
        requested_by: by,
        since: now,
        updated_at: now,
      })
      .onConflict((oc) =>
        oc
          .column('key')
          .doUpdateSet({ paused: 1, reason, requested_by: by, since: now, updated_at: now }),
      )
      .execute()
  })
}

export async function resumePushes(ctx: AppContext): Promise<void> {
  const now = ctx.clock.now().toISOString()
  await ctx.store.db
    .insertInto('maintenance')
    .values({ key: REGISTRY_SWITCH, paused: 0, updated_at: now })
    .onConflict((oc) =>
      oc
        .column('key')
        .doUpdateSet({ paused: 0, reason: null, requested_by: null, since: null, updated_at: now }),
    )
    .execute()
}

/**
 * Resolves once pushes are not paused. Given the job, its stage deadline is cleared while
 * it waits and set back later by the time waited: waiting is never the participant's fault.
 */
export async function waitWhilePushesPaused(
  ctx: AppContext,
  signal?: AbortSignal,
  options: { job?: ClaimedJob; pollMs?: number } = {},
): Promise<{ waitedMs: number }> {
  if (!(await pushPauseState(ctx)).paused) return { waitedMs: 0 }

  const started = Date.now()
  const deadline = options.job ? await jobDeadline(ctx, options.job) : null
  if (options.job && deadline) await ctx.queue.setDeadline(ctx.store.db, options.job, null)
  ctx.log.info(
    { jobId: options.job?.id },
    'pushes to the archive are paused for registry maintenance; waiting',
  )
  while ((await pushPauseState(ctx)).paused) {
    // An abort leaves the deadline cleared: the job is ending, or its lease is gone.
    await sleep(options.pollMs ?? POLL_MS, undefined, { signal })
  }
  const waitedMs = Date.now() - started
  if (options.job && deadline) {
    await ctx.queue.setDeadline(
      ctx.store.db,
      options.job,
      new Date(deadline.at.getTime() + waitedMs),
      deadline.reason,
    )
  }
  return { waitedMs }
}

/**
 * Runs a push holding a permit: waits while pushes are paused, registers the push so that
 * garbage collection waits for it, and releases the permit on every path.
 */
export async function withPushPermit<T>(
  ctx: AppContext,
  push: () => Promise<T>,
  options: { signal?: AbortSignal; job?: ClaimedJob; holder?: string } = {},
): Promise<T> {
  const holder =
    options.holder ??
    (options.job ? `job:${options.job.id}/${options.job.attempt}` : `pid:${process.pid}`)
  let permit: number | null = null
  while (permit === null) {
    await waitWhilePushesPaused(ctx, options.signal, { job: options.job })
    permit = await takePermit(ctx, holder)
  }

  const id = permit
  const heartbeat = setInterval(function refreshPermit() {
    ctx.store.db
      .updateTable('archive_pushes')
      .set({ heartbeat_at: ctx.clock.now().toISOString() })
      .where('id', '=', id)
      .execute()
      .catch((err: unknown) => ctx.log.warn({ err, permit: id }, 'could not refresh a push permit'))
  }, PERMIT_HEARTBEAT_MS)
  try {
    return await push()
  } finally {
    clearInterval(heartbeat)
    await ctx.store.db.deleteFrom('archive_pushes').where('id', '=', id).execute()
  }
}

/**
 * Waits until no push holds a permit. Permits not refreshed for `STALE_PERMIT_MS` belong to
 * dead processes: they are removed and counted.
 */
export async function waitForPushesToEnd(
  ctx: AppContext,
  options: { timeoutMs: number; signal?: AbortSignal; pollMs?: number },
): Promise<{ waitedMs: number; stalePermits: number }> {
  const started = Date.now()
  let stalePermits = 0
  for (;;) {
    const staleBefore = new Date(ctx.clock.now().getTime() - STALE_PERMIT_MS).toISOString()
    const removed = await ctx.store.db
      .deleteFrom('archive_pushes')
      .where('heartbeat_at', '<', staleBefore)
      .executeTakeFirst()
    stalePermits += Number(removed.numDeletedRows)
    const left = await ctx.store.db
      .selectFrom('archive_pushes')
      .select(['id', 'holder', 'started_at'])
      .execute()
    if (left.length === 0) return { waitedMs: Date.now() - started, stalePermits }
    if (Date.now() - started > options.timeoutMs) {
      throw new InfrastructureError(
        `${left.length} push(es) to the archive still running after ${Math.round(options.timeoutMs / 1000)} s (${left.map((p) => `${p.holder} since ${p.started_at}`).join(', ')}); garbage collection did not start, try again later`,
      )
    }
    await sleep(options.pollMs ?? POLL_MS, undefined, { signal: options.signal })
  }
}

/**
 * A permit, or null when pushes are paused. On PostgreSQL the switch row is read FOR SHARE,
 * so a pause waits for this transaction: a permit is either seen by the pausing garbage
 * collection or refused. SQLite runs one writer at a time, which gives the same.
 */
async function takePermit(ctx: AppContext, holder: string): Promise<number | null> {
  return inTransaction(ctx.store.db, async (trx) => {
    const now = ctx.clock.now().toISOString()
    // The row must exist for PostgreSQL to have something to lock.
    await trx
      .insertInto('maintenance')
      .values({ key: REGISTRY_SWITCH, paused: 0, updated_at: now })
      .onConflict((oc) => oc.column('key').doNothing())
      .execute()
    let query = trx.selectFrom('maintenance').select('paused').where('key', '=', REGISTRY_SWITCH)
    if (ctx.store.dialect === 'postgres') query = query.forShare()
    const row = await query.executeTakeFirst()
    if (Number(row?.paused ?? 0) === 1) return null
    const inserted = await trx
      .insertInto('archive_pushes')
      .values({ holder, started_at: now, heartbeat_at: now })
      .returning('id')
      .executeTakeFirstOrThrow()
    return Number(inserted.id)
  })
}

async function jobDeadline(
  ctx: AppContext,
  job: ClaimedJob,
): Promise<{ at: Date; reason: ReasonCode } | null> {
  const row = await ctx.store.db
    .selectFrom('jobs')
    .select(['deadline_at', 'deadline_reason'])
    .where('id', '=', job.id)
    .executeTakeFirst()
  if (!row?.deadline_at) return null
  return {
    at: new Date(row.deadline_at),
    reason: (row.deadline_reason ?? 'time_limit') as ReasonCode,
  }
}
