import type { AppContext } from '../app/context.ts'
import { parseJson } from '../store/transaction.ts'
import { loadManifests } from './manifest-cache.ts'
import {
  parseImageReference,
  type BlobRef,
  type ImageManifest,
  type ImageReference,
} from './registry-manifests.ts'

/**
 * Storage accounting: what the archive holds, counted the way the registry stores it. A blob
 * (compressed layer, config, the manifest itself) is stored once however many images and
 * repositories share it, so every figure counts each blob once.
 *
 * - `bytes` of a group: its images' distinct blobs.
 * - `exclusiveBytes` of a group: the blobs no image outside the group uses: what deleting the
 *   group's images and collecting garbage gives back.
 *
 * The images are those proctor knows: archived submissions and the grader images their
 * snapshots name. Blobs of images pushed to the same registry by anything else are not seen,
 * so exclusive figures are an upper bound on a registry shared with other users.
 */
export interface KnownImage {
  /** `registry/repository@sha256:…` */
  readonly reference: string
  readonly ref: ImageReference
  readonly kind: 'submission' | 'grader'
  readonly submissionIds: readonly number[]
  readonly challengeIds: readonly string[]
  readonly participants: readonly string[]
}

export interface StorageFigures {
  readonly images: number
  readonly blobs: number
  readonly bytes: number
  readonly exclusiveBytes: number
}

export interface StorageReport {
  /** Every image proctor knows, graders included. */
  readonly total: StorageFigures & {
    /** The images' sizes added up as if nothing were shared. */
    readonly unsharedBytes: number
  }
  readonly graders: StorageFigures
  readonly challenges: ReadonlyArray<
    StorageFigures & {
      readonly challengeId: string
      readonly participants: ReadonlyArray<StorageFigures & { readonly participant: string }>
    }
  >
  /** Images the database calls archived but the registry does not have. */
  readonly missing: ReadonlyArray<{ reference: string; submissionIds: readonly number[] }>
}

export interface FreedBytes {
  readonly images: readonly string[]
  readonly blobs: number
  readonly bytes: number
  /** Submissions outside the set that use one of its images (reused builds). */
  readonly sharedWith: readonly number[]
}

/** The registry's blobs for one image: the manifest, the config and each layer. */
export function imageBlobs(manifest: ImageManifest): BlobRef[] {
  return [
    { digest: manifest.digest, size: manifest.manifestBytes },
    manifest.config,
    ...manifest.layers,
  ]
}

/** Distinct blobs of these images, each counted once. */
export function distinctBlobs(manifests: Iterable<ImageManifest>): {
  blobs: number
  bytes: number
} {
  const seen = new Map<string, number>()
  for (const manifest of manifests) {
    for (const blob of imageBlobs(manifest)) seen.set(blob.digest, blob.size)
  }
  return { blobs: seen.size, bytes: sum(seen.values()) }
}

/** Blobs of `group` that no image of `others` uses: what deleting `group` frees. */
export function exclusiveBlobs(
  group: Iterable<ImageManifest>,
  others: Iterable<ImageManifest>,
): { blobs: number; bytes: number } {
  const kept = new Set<string>()
  for (const manifest of others) for (const blob of imageBlobs(manifest)) kept.add(blob.digest)
  const freed = new Map<string, number>()
  for (const manifest of group) {
    for (const blob of imageBlobs(manifest))
      if (!kept.has(blob.digest)) freed.set(blob.digest, blob.size)
  }
  return { blobs: freed.size, bytes: sum(freed.values()) }
}

/** Every image proctor knows of: archived submissions' images and their grader images. */
export async function listKnownImages(ctx: AppContext): Promise<KnownImage[]> {
  const rows = await ctx.store.db
    .selectFrom('submissions as s')
    .leftJoin('participants as p', 'p.id', 's.participant_id')
    .select([
      's.id',
      's.challenge_id',
      's.image_ref',
      's.archive',
      's.grader_image',
      's.quota_subject',
      's.project_path',
      'p.username',
    ])
    .where((eb) => eb.or([eb('s.archive', '=', 'archived'), eb('s.grader_image', 'is not', null)]))
    .orderBy('s.id')
    .execute()
  const evaluationGraders = await ctx.store.db
    .selectFrom('evaluations as e')
    .innerJoin('submissions as s', 's.id', 'e.submission_id')
    .select(['e.grader_image', 's.challenge_id'])
    .where('e.grader_image', 'is not', null)
    .execute()

  const images = new Map<
    string,
    {
      ref: ImageReference
      kind: KnownImage['kind']
      ids: Set<number>
      challenges: Set<string>
      participants: Set<string>
    }
  >()
  const add = (
    reference: string,
    kind: KnownImage['kind'],
    challengeId: string | null,
    extra?: { id: number; participant: string },
  ) => {
    const ref = parseImageReference(reference)
    if (!ref) return
    let image = images.get(reference)
    if (!image) {
      image = { ref, kind, ids: new Set(), challenges: new Set(), participants: new Set() }
      images.set(reference, image)
    }
    if (kind === 'submission') image.kind = 'submission'
    if (challengeId) image.challenges.add(challengeId)
    if (extra) {
      image.ids.add(extra.id)
      image.participants.add(extra.participant)
    }
  }

  for (const row of rows) {
    if (row.archive === 'archived' && row.image_ref) {
      const participant = row.username ?? row.quota_subject ?? row.project_path
      add(row.image_ref, 'submission', row.challenge_id, { id: Number(row.id), participant })
    }
    for (const grader of Object.values(parseJson<Record<string, string>>(row.grader_image, {}))) {
      add(grader, 'grader', row.challenge_id)
    }
  }
  for (const row of evaluationGraders) {
    for (const grader of Object.values(parseJson<Record<string, string>>(row.grader_image, {}))) {
      add(grader, 'grader', row.challenge_id)
    }
  }

  return [...images.entries()].map(([reference, image]) => ({
    reference,
    ref: image.ref,
    kind: image.kind,
    submissionIds: [...image.ids].sort((a, b) => a - b),
    challengeIds: [...image.challenges].sort(),
    participants: [...image.participants].sort(),
  }))
}

/**
 * Storage per challenge and per participant (`proctor storage`, `GET /api/storage`).
 * A filter narrows what is listed, never what is counted: exclusive bytes always consider
 * every image.
 */
export async function storageReport(
  ctx: AppContext,
  filter: { challenge?: string; participant?: string } = {},
): Promise<StorageReport> {
  const images = await listKnownImages(ctx)
  const manifests = await loadManifests(
    ctx,
    images.map((i) => i.ref),
  )
  const present = images.filter((i) => manifests.get(i.ref.digest))
  const manifestOf = (image: KnownImage) => manifests.get(image.ref.digest) as ImageManifest

  // How many images use each blob: a group's blob is its own when all its users are in it.
  const users = new Map<string, number>()
  for (const image of present) {
    for (const blob of imageBlobs(manifestOf(image)))
      users.set(blob.digest, (users.get(blob.digest) ?? 0) + 1)
  }
  const figures = (group: readonly KnownImage[]): StorageFigures => {
    const inGroup = new Map<string, { size: number; users: number }>()
    for (const image of group) {
      for (const blob of imageBlobs(manifestOf(image))) {
        inGroup.set(blob.digest, {
          size: blob.size,
          users: (inGroup.get(blob.digest)?.users ?? 0) + 1,
        })
      }
    }
    const blobs = [...inGroup.entries()]
    return {
      images: group.length,
      blobs: blobs.length,
      bytes: sum(blobs.map(([, b]) => b.size)),
      exclusiveBytes: sum(
        blobs.filter(([digest, b]) => b.users === users.get(digest)).map(([, b]) => b.size),
      ),
    }
  }

  const challengeIds = [
    ...new Set(present.filter((i) => i.kind === 'submission').flatMap((i) => i.challengeIds)),
  ]
    .filter((id) => filter.challenge === undefined || id === filter.challenge)
    .sort()
  const challenges = challengeIds.map((challengeId) => {
    const ofChallenge = present.filter(
      (i) => i.kind === 'submission' && i.challengeIds.includes(challengeId),
    )
    const participants = [...new Set(ofChallenge.flatMap((i) => i.participants))]
      .filter((p) => filter.participant === undefined || p === filter.participant)
      .sort()
      .map((participant) => ({
        participant,
        ...figures(ofChallenge.filter((i) => i.participants.includes(participant))),
      }))
    return { challengeId, ...figures(ofChallenge), participants }
  })

  return {
    total: {
      ...figures(present),
      unsharedBytes: sum(present.map((i) => sum(imageBlobs(manifestOf(i)).map((b) => b.size)))),
    },
    graders: figures(present.filter((i) => i.kind === 'grader')),
    challenges,
    missing: images
      .filter((i) => !manifests.get(i.ref.digest))
      .map((i) => ({ reference: i.reference, submissionIds: i.submissionIds })),
  }
}

/** What deleting these submissions' images (and collecting garbage) would free. */
export async function bytesFreedBy(
  ctx: AppContext,
  submissionIds: readonly number[],
): Promise<FreedBytes> {
  const wanted = new Set(submissionIds)
  const images = await listKnownImages(ctx)
  const manifests = await loadManifests(
    ctx,
    images.map((i) => i.ref),
  )
  const deleted = images.filter((i) => i.submissionIds.some((id) => wanted.has(id)))
  const kept = images.filter((i) => !deleted.includes(i))
  const present = (list: KnownImage[]) =>
    list.flatMap((i) => {
      const manifest = manifests.get(i.ref.digest)
      return manifest ? [manifest] : []
    })
  const freed = exclusiveBlobs(present(deleted), present(kept))
  return {
    images: deleted.map((i) => i.reference),
    blobs: freed.blobs,
    bytes: freed.bytes,
    sharedWith: [...new Set(deleted.flatMap((i) => i.submissionIds))]
      .filter((id) => !wanted.has(id))
      .sort((a, b) => a - b),
  }
}

/**
 * Bytes the archive holds for every image proctor knows, each blob counted once: the
 * figure for a metrics gauge. Manifests are cached, so after the first call this reads the
 * database only.
 */
export async function archiveBytes(ctx: AppContext): Promise<number> {
  const images = await listKnownImages(ctx)
  const manifests = await loadManifests(
    ctx,
    images.map((i) => i.ref),
  )
  return distinctBlobs([...manifests.values()].filter((m): m is ImageManifest => m !== null)).bytes
}

function sum(values: Iterable<number>): number {
  let total = 0
  for (const v of values) total += v
  return total
}
