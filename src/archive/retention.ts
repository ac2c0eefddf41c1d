import type { AppContext } from '../app/context.ts'
import { deleteManifest } from '../build/registry.ts'
import type { ChallengeDefinition } from '../config/challenge.ts'
import { BadRequestError, errorMessage } from '../domain/errors.ts'
import { computeLeaderboard } from '../platform/leaderboard.ts'
import { inTransaction } from '../store/transaction.ts'
import { appendTimeline } from '../submissions/timeline.ts'
import { bytesFreedBy } from './accounting.ts'
import { authFor } from './manifest-cache.ts'
import { parseImageReference } from './registry-manifests.ts'
import {
  decideRetention,
  type RetentionCandidate,
  type RetentionDecision,
} from './retention-decide.ts'
import { challengeEnd, type RetentionPolicy } from './retention-policy.ts'

export {
  decideRetention,
  type KeepReason,
  type RetentionCandidate,
  type RetentionDecision,
} from './retention-decide.ts'

/**
 * Retention: which archived images a challenge keeps and which expire. Expiring an image
 * deletes its manifest from the registry by digest and marks its submissions' archive
 * `expired`: they keep their scores and timelines, and a re-run is refused from then on.
 * The disk space comes back at the registry's next garbage collection (garbage-collect.ts).
 *
 * An image is the unit: submissions that reused another's build share its manifest, so an
 * image expires only when every submission using it may expire.
 */
export interface RetentionPlan {
  readonly challengeId: string
  readonly policy: RetentionPolicy
  readonly generatedAt: string
  readonly challengeEnded: boolean
  readonly decisions: readonly RetentionDecision[]
  /** The images to delete, with the submissions that use them. */
  readonly expire: ReadonlyArray<{ reference: string; submissionIds: readonly number[] }>
  /** What garbage collection gives back once they are deleted (each blob counted once). */
  readonly bytesFreed: number
  readonly blobsFreed: number
}

export interface RetentionResult {
  readonly plan: RetentionPlan
  readonly expired: ReadonlyArray<{ reference: string; submissionIds: readonly number[] }>
  readonly failed: ReadonlyArray<{
    reference: string
    submissionIds: readonly number[]
    error: string
  }>
}

/** The plan for one challenge: a dry run lists it, `applyRetention` carries it out. */
export async function planRetention(
  ctx: AppContext,
  challengeId: string,
  policy: RetentionPolicy,
): Promise<RetentionPlan> {
  const challenge = ctx.challenges.get(challengeId)
  if (!challenge)
    throw new BadRequestError(`no challenge ${challengeId} is loaded`, 404, 'not_found')
  const definition = challenge.definition
  const now = ctx.clock.now()

  const candidates = await loadCandidates(ctx, definition, now)
  const references = [...new Set(candidates.map((c) => c.reference))]
  const ids = new Set(candidates.map((c) => c.submissionId))
  const sharers = references.length
    ? (
        await ctx.store.db
          .selectFrom('submissions')
          .select(['id', 'image_ref'])
          .where('image_ref', 'in', references)
          .execute()
      )
        .filter((row) => !ids.has(Number(row.id)))
        .map((row) => ({ reference: row.image_ref ?? '' }))
    : []
  const end = challengeEnd(definition)
  const decisions = decideRetention(
    candidates,
    policy,
    {
      now,
      end,
      acceptingSubmissions: definition.acceptSubmissions,
      direction: definition.scoring.direction,
    },
    sharers,
  )

  const expire = new Map<string, number[]>()
  for (const d of decisions) {
    if (d.action === 'expire')
      expire.set(d.reference, [...(expire.get(d.reference) ?? []), d.submissionId])
  }
  const freed = await bytesFreedBy(ctx, [...expire.values()].flat())
  return {
    challengeId,
    policy,
    generatedAt: now.toISOString(),
    challengeEnded: end ? now >= end : !definition.acceptSubmissions,
    decisions,
    expire: [...expire.entries()].map(([reference, submissionIds]) => ({
      reference,
      submissionIds,
    })),
    bytesFreed: freed.bytes,
    blobsFreed: freed.blobs,
  }
}

/**
 * Carries out a plan. Each image is first marked `expired` (in one transaction that checks
 * its submissions still may expire: a pin or a re-run since the plan keeps it), then its
 * manifest is deleted by digest; if the registry refuses, the mark is undone and the error
 * kept on the submissions. Returns what was done and what was not, image by image.
 */
export async function applyRetention(
  ctx: AppContext,
  plan: RetentionPlan,
  options: { actor: string },
): Promise<RetentionResult> {
  const expired: { reference: string; submissionIds: readonly number[] }[] = []
  const failed: { reference: string; submissionIds: readonly number[]; error: string }[] = []
  const log = ctx.log.child({ part: 'retention', challengeId: plan.challengeId })

  for (const image of plan.expire) {
    const ref = parseImageReference(image.reference)
    if (!ref) {
      failed.push({ ...image, error: `${image.reference} is not a registry reference by digest` })
      continue
    }
    const marked = await markExpired(ctx, image, options.actor)
    if (!marked.ok) {
      failed.push({ ...image, error: marked.reason })
      continue
    }

    try {
      await deleteManifest(ref.registry, ref.repository, ref.digest, {
        auth: authFor(ctx, ref.registry),
      })
      expired.push(image)
    } catch (err) {
      const message = errorMessage(err)
      log.warn(
        { reference: image.reference, err: message },
        'could not delete an expired image; it stays archived',
      )
      await unmarkExpired(ctx, image, options.actor, message)
      failed.push({ ...image, error: message })
    }
  }
  log.info(
    { expired: expired.length, failed: failed.length, bytesFreed: plan.bytesFreed },
    'retention applied; run garbage collection to reclaim the space',
  )
  return { plan, expired, failed }
}

async function loadCandidates(
  ctx: AppContext,
  definition: ChallengeDefinition,
  now: Date,
): Promise<RetentionCandidate[]> {
  const { db } = ctx.store
  const rows = await db
    .selectFrom('submissions as s')
    .leftJoin('participants as p', 'p.id', 's.participant_id')
    .select([
      's.id',
      's.state',
      's.score',
      's.debug',
      's.created_at',
      's.pinned',
      's.image_ref',
      's.quota_subject',
      's.project_path',
      'p.username',
    ])
    .where('s.challenge_id', '=', definition.id)
    .where('s.archive', '=', 'archived')
    .where('s.image_ref', 'is not', null)
    .orderBy('s.id')
    .execute()
  if (rows.length === 0) return []

  const ids = rows.map((r) => Number(r.id))
  const busy = new Set<number>()
  for (const r of await db
    .selectFrom('evaluations')
    .select('submission_id')
    .where('submission_id', 'in', ids)
    .where('state', 'in', ['queued', 'running'])
    .execute()) {
    busy.add(Number(r.submission_id))
  }
  for (const r of await db
    .selectFrom('verifications')
    .select('submission_id')
    .where('submission_id', 'in', ids)
    .where('finished_at', 'is', null)
    .execute()) {
    busy.add(Number(r.submission_id))
  }
  const onBoards = await leaderboardSubmissions(ctx, definition, now)

  return rows.map((r) => ({
    submissionId: Number(r.id),
    challengeId: definition.id,
    participant: r.quota_subject ?? r.username ?? r.project_path,
    state: r.state,
    score: r.score === null ? null : Number(r.score),
    debug: Number(r.debug) === 1,
    createdAt: r.created_at,
    pinned: Number(r.pinned) === 1,
    onLeaderboard: onBoards.has(Number(r.id)),
    busy: busy.has(Number(r.id)),
    reference: r.image_ref ?? '',
  }))
}

/** Every submission on one of the challenge's boards (each round's), as organizers see it. */
async function leaderboardSubmissions(
  ctx: AppContext,
  definition: ChallengeDefinition,
  now: Date,
): Promise<Set<number>> {
  const rounds: (string | undefined)[] = definition.rounds.length
    ? definition.rounds.map((r) => r.id)
    : [undefined]
  const found = new Set<number>()
  for (const roundId of rounds) {
    const board = await computeLeaderboard(ctx.store.db, definition, {
      roundId,
      view: 'organizer',
      now,
    })
    for (const entry of board.entries) found.add(entry.submissionId)
  }
  return found
}

async function markExpired(
  ctx: AppContext,
  image: { reference: string; submissionIds: readonly number[] },
  actor: string,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  return inTransaction(ctx.store.db, async (trx) => {
    const ids = [...image.submissionIds]
    const rows = await trx
      .selectFrom('submissions')
      .select(['id', 'archive', 'image_ref', 'pinned'])
      .where('id', 'in', ids)
      .execute()
    const running = await trx
      .selectFrom('evaluations')
      .select('id')
      .where('submission_id', 'in', ids)
      .where('state', 'in', ['queued', 'running'])
      .execute()
    const verifying = await trx
      .selectFrom('verifications')
      .select('id')
      .where('submission_id', 'in', ids)
      .where('finished_at', 'is', null)
      .execute()
    const others = await trx
      .selectFrom('submissions')
      .select('id')
      .where('image_ref', '=', image.reference)
      .where('archive', '=', 'archived')
      .where('id', 'not in', ids)
      .execute()
    const changed =
      rows.length !== ids.length ||
      rows.some(
        (r) =>
          r.archive !== 'archived' || r.image_ref !== image.reference || Number(r.pinned) === 1,
      )
    if (changed || running.length || verifying.length || others.length) {
      return {
        ok: false as const,
        reason:
          'kept: the submissions changed since the plan (pinned, re-run, verified or reused); plan again',
      }
    }

    const now = ctx.clock.now()
    await trx
      .updateTable('submissions')
      .set({ archive: 'expired', archive_error: null, updated_at: now.toISOString() })
      .where('id', 'in', ids)
      .execute()
    for (const id of ids) {
      await appendTimeline(trx, {
        submissionId: id,
        kind: 'note',
        message: `archived image ${image.reference} expired by the retention policy; the score stays, re-runs are no longer possible`,
        actor,
        at: now,
      })
    }
    return { ok: true as const }
  })
}

async function unmarkExpired(
  ctx: AppContext,
  image: { reference: string; submissionIds: readonly number[] },
  actor: string,
  error: string,
): Promise<void> {
  await inTransaction(ctx.store.db, async (trx) => {
    const now = ctx.clock.now()
    const ids = [...image.submissionIds]
    await trx
      .updateTable('submissions')
      .set({
        archive: 'archived',
        archive_error: `retention could not delete the image: ${error}`,
        updated_at: now.toISOString(),
      })
      .where('id', 'in', ids)
      .where('archive', '=', 'expired')
      .execute()
    for (const id of ids) {
      await appendTimeline(trx, {
        submissionId: id,
        kind: 'note',
        message: `the image was not expired after all: the registry refused to delete it (${error})`,
        actor,
        at: now,
      })
    }
  })
}
