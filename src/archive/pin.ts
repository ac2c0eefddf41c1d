import type { AppContext } from '../app/context.ts'
import { BadRequestError } from '../domain/errors.ts'
import { inTransaction } from '../store/transaction.ts'
import { appendTimeline } from '../submissions/timeline.ts'

/**
 * Pins (or unpins) a submission's archived image: a pinned image is kept whatever the
 * retention policy says. Recorded on the submission's timeline; pinning twice changes nothing.
 */
export async function setPinned(
  ctx: AppContext,
  submissionId: number,
  pinned: boolean,
  options: { actor: string },
): Promise<{ submissionId: number; pinned: boolean; archive: string; changed: boolean }> {
  return inTransaction(ctx.store.db, async (trx) => {
    const row = await trx
      .selectFrom('submissions')
      .select(['id', 'pinned', 'archive'])
      .where('id', '=', submissionId)
      .executeTakeFirst()
    if (!row) throw new BadRequestError(`no submission ${submissionId}`, 404, 'not_found')
    if (pinned && row.archive === 'expired') {
      throw new BadRequestError(
        `submission ${submissionId}'s image has already expired; there is nothing left to keep`,
        409,
        'expired',
      )
    }
    const changed = (Number(row.pinned) === 1) !== pinned
    if (changed) {
      const now = ctx.clock.now()
      await trx
        .updateTable('submissions')
        .set({ pinned: pinned ? 1 : 0, updated_at: now.toISOString() })
        .where('id', '=', submissionId)
        .execute()
      await appendTimeline(trx, {
        submissionId,
        kind: 'note',
        message: pinned
          ? `image pinned by ${options.actor}: retention keeps it`
          : `image unpinned by ${options.actor}: retention applies again`,
        actor: options.actor,
        at: now,
      })
    }
    return { submissionId, pinned, archive: row.archive, changed }
  })
}
