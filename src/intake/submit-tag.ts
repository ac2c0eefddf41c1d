import type { AppContext } from '../app/context.ts'
import { BadRequestError } from '../domain/errors.ts'
import { findForgeIdentity, findParticipantsByUsernames } from '../participants/directory.ts'
import {
  deliveryKey,
  isSafeProjectPath,
  isValidTagName,
  TAG_PREFIX,
  type TagPushEvent,
} from './forge-event.ts'
import { Mirror } from './mirror.ts'
import { recordForgeEvent, type RecordResult } from './record-event.ts'

export interface SubmitTagOptions {
  forgeId: string
  /** `alice/flower-classification` */
  projectPath: string
  /**
   * The forge's project id. Leave it out to reuse the id earlier hooks gave for this path,
   * else the path stands in for it. Give it when hooks may come later for the same project,
   * so both paths agree on the submission's identity.
   */
  projectId?: string
  tag: string
  /** The participant submitting: their directory username. Their account on the forge is the pusher. */
  participantUsername: string
  idempotencyKey?: string
}

export type SubmitTagResult = RecordResult & { commit: string; after: string }

/**
 * `proctor submit`: submits an existing tag without a hook. Resolves the tag in the project's
 * mirror (fetched from the configured forge), then stores a synthetic tag-push event through
 * the same path as a hook: same dedup (a tag already delivered by a hook is a duplicate),
 * same intake job, same checks and quota.
 *
 *   await submitTag(ctx, { forgeId: 'gitlab', projectPath: 'alice/flower-classification',
 *                          tag: 'v1', participantUsername: 'alice' })
 *   → { status: 'accepted', eventId: 14, commit: 'a036965e…', after: 'a036965e…' }
 *
 * Throws BadRequestError (404/400) for an unknown forge, participant or tag, and
 * InfrastructureError when the forge cannot be fetched.
 */
export async function submitTag(
  ctx: AppContext,
  options: SubmitTagOptions,
): Promise<SubmitTagResult> {
  const forge = ctx.config.forges.find((f) => f.id === options.forgeId)
  if (!forge)
    throw new BadRequestError(
      `no forge with id ${options.forgeId} is configured`,
      404,
      'unknown_forge',
    )
  if (!isSafeProjectPath(options.projectPath)) {
    throw new BadRequestError(`${JSON.stringify(options.projectPath)} is not a project path`, 400)
  }
  if (!isValidTagName(options.tag))
    throw new BadRequestError(`${JSON.stringify(options.tag)} is not a tag name`, 400)

  const [participant] = await findParticipantsByUsernames(ctx.store.db, [
    options.participantUsername,
  ])
  if (!participant) {
    throw new BadRequestError(
      `no participant ${options.participantUsername} in the directory`,
      404,
      'unknown_participant',
    )
  }
  const identity = await findForgeIdentity(ctx.store.db, Number(participant.id), forge.id)
  if (!identity) {
    throw new BadRequestError(
      `participant ${participant.username} has no ${forge.id} account in the directory; add one under identities`,
      400,
      'no_identity',
    )
  }

  const mirror = new Mirror(ctx.config, forge, options.projectPath)
  await mirror.fetch()
  const after = await mirror.tagTarget(options.tag)
  const commit = after ? await mirror.peel(after) : null
  if (!after || !commit) {
    throw new BadRequestError(
      `tag ${options.tag} does not exist in ${options.projectPath} on ${forge.id} (or does not point to a commit)`,
      404,
      'unknown_tag',
    )
  }

  const projectId =
    options.projectId ??
    (await knownProjectId(ctx, forge.id, options.projectPath)) ??
    options.projectPath
  const partial: Omit<TagPushEvent, 'idempotencyKey'> = {
    kind: 'tag_push',
    projectId,
    projectPath: options.projectPath,
    ref: `${TAG_PREFIX}${options.tag}`,
    tag: options.tag,
    after,
    checkoutSha: commit,
    pusher: {
      forgeUserId: identity.forgeUserId,
      username: identity.username ?? participant.username,
    },
  }
  const event: TagPushEvent = {
    ...partial,
    idempotencyKey:
      options.idempotencyKey ??
      `submit:${deliveryKey(forge.id, { ...partial, idempotencyKey: null })}`,
  }
  const result = await recordForgeEvent(ctx, forge.id, event)
  return { ...result, commit, after }
}

async function knownProjectId(
  ctx: AppContext,
  forgeId: string,
  projectPath: string,
): Promise<string | null> {
  const row = await ctx.store.db
    .selectFrom('hook_events')
    .select('project_id')
    .where('forge', '=', forgeId)
    .where('project_path', '=', projectPath)
    .where('project_id', 'is not', null)
    .orderBy('id', 'desc')
    .executeTakeFirst()
  return row?.project_id ?? null
}
