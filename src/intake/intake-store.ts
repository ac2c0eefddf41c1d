import type { Transaction } from 'kysely'

import type { Clock } from '../domain/clock.ts'
import type { Database, HookEvent, Submission } from '../store/schema.ts'
import type { Executor } from '../store/transaction.ts'
import { appendTimeline } from '../submissions/timeline.ts'
import type { Manifest } from './manifest.ts'

/** The columns of a tag-push event the intake job needs, all present (the hook stored them). */
export interface TagPushRow {
  readonly id: number
  readonly forge: string
  readonly projectId: string
  readonly projectPath: string
  readonly ref: string
  readonly tag: string
  readonly after: string
  readonly checkoutSha: string
  readonly pusherForgeId: string
  readonly pusherUsername: string | null
  readonly submissionId: number | null
}

export function toTagPushRow(event: HookEvent): TagPushRow | null {
  const { project_id, project_path, ref, tag, after_sha, checkout_sha, pusher_forge_id } = event
  if (
    !project_id ||
    !project_path ||
    !ref ||
    !tag ||
    !after_sha ||
    !checkout_sha ||
    !pusher_forge_id
  ) {
    return null
  }
  return {
    id: Number(event.id),
    forge: event.forge,
    projectId: project_id,
    projectPath: project_path,
    ref,
    tag,
    after: after_sha,
    checkoutSha: checkout_sha,
    pusherForgeId: pusher_forge_id,
    pusherUsername: event.pusher_username,
    submissionId: event.submission_id,
  }
}

export async function findSubmissionByIdentity(
  db: Executor,
  event: TagPushRow,
  commit: string,
): Promise<Submission | undefined> {
  return db
    .selectFrom('submissions')
    .selectAll()
    .where('forge', '=', event.forge)
    .where('project_id', '=', event.projectId)
    .where('tag', '=', event.tag)
    .where('commit_sha', '=', commit)
    .executeTakeFirst()
}

/** What a submission that passed the checks records at creation. */
export interface AcceptedFields {
  challengeId: string
  roundId: string | null
  participantId: number
  quotaSubject: string
  authors: readonly string[]
}

export const RECEIVED_DETAIL =
  'received; checking crowdai.json, the challenge and the participant, then the quota'

/**
 * Creates the submission for (forge, project, tag, commit) as `received`, or returns the one
 * that exists: the identity is unique, so a concurrent intake of a re-pushed tag on the same
 * commit finds the first one instead of failing.
 */
export async function createSubmission(
  trx: Transaction<Database>,
  event: TagPushRow,
  commit: string,
  manifest: Manifest | null,
  clock: Clock,
  accepted?: AcceptedFields,
): Promise<{ submission: Submission; created: boolean }> {
  const now = clock.now()
  const at = now.toISOString()
  const inserted = await trx
    .insertInto('submissions')
    .values({
      event_id: event.id,
      challenge_id: accepted?.challengeId ?? null,
      round_id: accepted?.roundId ?? null,
      forge: event.forge,
      project_id: event.projectId,
      project_path: event.projectPath,
      tag: event.tag,
      commit_sha: commit,
      participant_id: accepted?.participantId ?? null,
      pusher_username: event.pusherUsername,
      quota_subject: accepted?.quotaSubject ?? null,
      authors_json: JSON.stringify(accepted?.authors ?? []),
      description: manifest?.description ?? null,
      manifest_extra_json: JSON.stringify(manifest?.extra ?? {}),
      debug: manifest?.debug ? 1 : 0,
      state: 'received',
      status_detail: RECEIVED_DETAIL,
      archive: 'pending',
      created_at: at,
      updated_at: at,
      state_changed_at: at,
    })
    .onConflict((oc) => oc.columns(['forge', 'project_id', 'tag', 'commit_sha']).doNothing())
    .returningAll()
    .executeTakeFirst()

  if (!inserted) {
    const existing = await findSubmissionByIdentity(trx, event, commit)
    if (!existing) throw new Error(`submission for event ${event.id} vanished during insert`)
    return { submission: existing, created: false }
  }

  const id = Number(inserted.id)
  await appendTimeline(trx, {
    submissionId: id,
    kind: 'state',
    state: 'received',
    message: `${RECEIVED_DETAIL} (tag ${event.tag}, commit ${commit.slice(0, 12)}, event ${event.id})`,
    actor: 'proctor',
    at: now,
  })
  await trx
    .updateTable('hook_events')
    .set({ submission_id: id })
    .where('id', '=', event.id)
    .execute()
  return { submission: { ...inserted, id }, created: true }
}

/** The event is done: it names its submission from now on. */
export async function markEventProcessed(
  db: Executor,
  eventId: number,
  submissionId: number | null,
  clock: Clock,
): Promise<void> {
  await db
    .updateTable('hook_events')
    .set({
      status: 'processed',
      submission_id: submissionId,
      processed_at: clock.now().toISOString(),
    })
    .where('id', '=', eventId)
    .execute()
}

export async function markEventFailed(
  db: Executor,
  eventId: number,
  reason: string,
  clock: Clock,
): Promise<void> {
  await db
    .updateTable('hook_events')
    .set({ status: 'failed', reason, processed_at: clock.now().toISOString() })
    .where('id', '=', eventId)
    .execute()
}
