import { reportingDb, type AnnouncementState } from '../outbox/tables.ts'
import type { Store } from '../store/database.ts'

/**
 * The durable record of create calls made to an external platform. A create is the one call
 * that cannot simply be repeated: each one makes a submission on the platform and costs the
 * participant a slot there. So its outcome is written the moment it is known, and a retry
 * reads it first:
 *
 * - `created`: the platform's id is stored (and on the submission): never create again;
 * - `refused`: the platform said no, with its message;
 * - `failed`: the platform answered without creating (401, 408, 429);
 * - `sending` / `uncertain`: the call went out and no answer came back (timeout, reset, a
 *   crash, a 5xx): the platform may or may not have created it.
 */
export interface AnnouncementRecord {
  readonly id: number
  readonly state: AnnouncementState
  readonly platformSubmissionId: string | null
}

/** The platform id of an earlier create that succeeded, if any. */
export async function createdPlatformId(
  store: Store,
  submissionId: number,
): Promise<string | null> {
  const rdb = reportingDb(store.db)
  const submission = await rdb
    .selectFrom('submissions')
    .select('platform_submission_id')
    .where('id', '=', submissionId)
    .executeTakeFirst()
  if (submission?.platform_submission_id) return submission.platform_submission_id
  const created = await rdb
    .selectFrom('platform_announcements')
    .select('platform_submission_id')
    .where('submission_id', '=', submissionId)
    .where('state', '=', 'created')
    .orderBy('id', 'desc')
    .executeTakeFirst()
  return created?.platform_submission_id ?? null
}

/**
 * Marks earlier calls whose outcome never came back as `uncertain` and returns how many
 * there were: the caller is about to create again, and the platform may hold a duplicate.
 */
export async function settleUnansweredCreates(
  store: Store,
  submissionId: number,
  now: Date,
): Promise<number> {
  const rdb = reportingDb(store.db)
  await rdb
    .updateTable('platform_announcements')
    .set({
      state: 'uncertain',
      finished_at: now.toISOString(),
      message: 'no answer came back (proctor stopped or lost the connection mid-call)',
    })
    .where('submission_id', '=', submissionId)
    .where('state', '=', 'sending')
    .execute()
  const row = await rdb
    .selectFrom('platform_announcements')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('submission_id', '=', submissionId)
    .where('state', '=', 'uncertain')
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

/** Records a create call about to go out (committed before the call). */
export async function startCreate(
  store: Store,
  submissionId: number,
  platform: string,
  now: Date,
): Promise<number> {
  const row = await reportingDb(store.db)
    .insertInto('platform_announcements')
    .values({
      submission_id: submissionId,
      platform,
      state: 'sending',
      started_at: now.toISOString(),
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return Number(row.id)
}

/** Records a create's outcome. `created` also stores the id on the submission, atomically. */
export async function finishCreate(
  store: Store,
  announcementId: number,
  outcome: {
    state: Exclude<AnnouncementState, 'sending'>
    platformSubmissionId?: string
    message?: string
  },
  now: Date,
): Promise<void> {
  await store.db.transaction().execute(async (trx) => {
    const rdb = reportingDb(trx)
    const row = await rdb
      .updateTable('platform_announcements')
      .set({
        state: outcome.state,
        platform_submission_id: outcome.platformSubmissionId ?? null,
        message: outcome.message ?? null,
        finished_at: now.toISOString(),
      })
      .where('id', '=', announcementId)
      .returning('submission_id')
      .executeTakeFirstOrThrow()
    if (outcome.state === 'created' && outcome.platformSubmissionId) {
      await rdb
        .updateTable('submissions')
        .set({ platform_submission_id: outcome.platformSubmissionId })
        .where('id', '=', row.submission_id)
        .where('platform_submission_id', 'is', null)
        .execute()
    }
  })
}

export async function listAnnouncements(
  store: Store,
  submissionId: number,
): Promise<AnnouncementRecord[]> {
  const rows = await reportingDb(store.db)
    .selectFrom('platform_announcements')
    .select(['id', 'state', 'platform_submission_id'])
    .where('submission_id', '=', submissionId)
    .orderBy('id')
    .execute()
  return rows.map((r) => ({
    id: Number(r.id),
    state: r.state,
    platformSubmissionId: r.platform_submission_id,
  }))
}
