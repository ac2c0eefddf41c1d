import type { ForgeConfig } from '../config/proctor-config.ts'
import type { OutboxMessage, OutboxTarget } from '../outbox/target.ts'
import { PermanentDeliveryError } from '../outbox/target.ts'
import type { Store } from '../store/database.ts'
import type { Submission } from '../store/schema.ts'
import type { Executor } from '../store/transaction.ts'
import type { Platform, PlatformParticipant, PlatformUpdate } from './platform.ts'

export interface UpdateContext {
  readonly forges: readonly ForgeConfig[]
  /** `server.publicUrl`, for links to the submission page. */
  readonly publicUrl: string | undefined
}

/** The outbox targets of a platform: each hands its messages to `platform.update`. */
export function platformTargets(
  platform: Platform,
  store: Store,
  context: UpdateContext,
): OutboxTarget[] {
  return platform.targets.map((id) => ({
    id,
    async deliver(message, signal) {
      const update = await buildPlatformUpdate(store.db, message, context)
      return platform.update(id, update, signal)
    },
  }))
}

/** Joins a message with what the store knows now about its submission. */
export async function buildPlatformUpdate(
  db: Executor,
  message: OutboxMessage,
  context: UpdateContext,
): Promise<PlatformUpdate> {
  const submission = await db
    .selectFrom('submissions')
    .selectAll()
    .where('id', '=', message.submissionId)
    .executeTakeFirst()
  if (!submission) {
    throw new PermanentDeliveryError(
      `outbox message ${message.id} names submission ${message.submissionId}, which no longer exists`,
    )
  }
  const participant =
    submission.participant_id === null
      ? undefined
      : await db
          .selectFrom('participants')
          .select(['username', 'team', 'platform_id'])
          .where('id', '=', submission.participant_id)
          .executeTakeFirst()

  const p = message.payload
  return {
    key: String(message.id),
    event: p.event,
    submission,
    participant: participant
      ? {
          username: participant.username,
          team: participant.team,
          platformId: participant.platform_id,
        }
      : null,
    state: p.state,
    previousState: p.previousState,
    reasonCode: p.reasonCode,
    message: p.message,
    progress: p.progress,
    score: p.score,
    scoreSecondary: p.scoreSecondary,
    at: p.at,
    meta: submissionMeta(submission, context, {
      proctor_update_id: String(message.id),
      proctor_state: p.state,
      proctor_stage: p.stage,
      proctor_attempt: p.attempt,
      proctor_reason_code: p.reasonCode,
    }),
  }
}

/**
 * The metadata proctor sends with a submission. The crowdAI front end builds its "code"
 * link from `repo_url`, `repo_ref` and `gitlab_project_id`, as the GitLab-era graders sent.
 */
export function submissionMeta(
  submission: Submission,
  context: UpdateContext,
  extra: Record<string, string | number | boolean | null> = {},
): Record<string, string | number | boolean | null> {
  const forge = context.forges.find((f) => f.id === submission.forge)
  const repoUrl = forge ? `${forge.baseUrl.replace(/\/+$/, '')}/${submission.project_path}` : null
  return {
    proctor_submission_id: submission.id,
    repo_url: repoUrl,
    repo_ref: submission.tag,
    commit_sha: submission.commit_sha,
    ...(forge?.kind === 'gitlab' ? { gitlab_project_id: submission.project_id } : {}),
    proctor_url: submissionUrl(context.publicUrl, submission.id),
    ...extra,
  }
}

/** The participant-facing page of a submission, when proctor knows its public address. */
export function submissionUrl(publicUrl: string | undefined, submissionId: number): string | null {
  return publicUrl ? `${publicUrl.replace(/\/+$/, '')}/submissions/${submissionId}` : null
}

/** Who a submission is from, as an external platform names them. */
export function platformUsername(participant: PlatformParticipant): string {
  return participant.platformId ?? participant.username
}
