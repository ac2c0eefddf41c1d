import type Docker from 'dockerode'
import type { Logger } from 'pino'

import type { AppContext } from '../app/context.ts'
import { errorMessage } from '../domain/errors.ts'

export interface PruneOptions {
  /** Images built longer ago than this may go (default 7 days). */
  readonly maxAgeMs?: number
  /** Keep at most this many bytes of submission images; the oldest go first (default 50 GiB). */
  readonly maxTotalBytes?: number
  readonly now?: Date
}

export interface PruneResult {
  readonly removed: readonly { id: string; submissionId: number; bytes: number }[]
  readonly kept: number
  readonly bytesFreed: number
}

interface Candidate {
  id: string
  submissionId: number
  created: number
  bytes: number
}

/**
 * Removes submission images (labelled `proctor.submission` by the build) this worker no
 * longer needs: those older than `maxAgeMs`, then the oldest until the rest fit in
 * `maxTotalBytes`. Never one whose submission's archive is not confirmed
 * (`archive != 'archived'`: the local image is the only copy until a push succeeds), never
 * one a job running now needs, never one a container uses (the engine refuses those too).
 * An archived image removed here is pulled again by digest if a re-run needs it.
 */
export async function pruneImages(
  ctx: Pick<AppContext, 'store' | 'clock'>,
  docker: Docker,
  log: Logger,
  options: PruneOptions = {},
): Promise<PruneResult> {
  const now = (options.now ?? ctx.clock.now()).getTime()
  const maxAgeMs = options.maxAgeMs ?? 7 * 86_400_000
  const maxTotalBytes = options.maxTotalBytes ?? 50 * 1024 ** 3

  const images = await docker.listImages({ filters: { label: ['proctor.submission'] } })
  const all: Candidate[] = images.map((image) => ({
    id: image.Id,
    submissionId: Number(image.Labels['proctor.submission']),
    created: image.Created * 1000,
    bytes: image.Size,
  }))
  const protectedIds = await protectedSubmissions(
    ctx,
    all.map((c) => c.submissionId),
  )
  const inUse = new Set((await docker.listContainers({ all: true })).map((c) => c.ImageID))

  const removable = all
    .filter((c) => !protectedIds.has(c.submissionId) && !inUse.has(c.id))
    .sort((a, b) => a.created - b.created)
  let total = all.reduce((sum, c) => sum + c.bytes, 0)
  const removed: PruneResult['removed'][number][] = []
  for (const candidate of removable) {
    const tooOld = now - candidate.created > maxAgeMs
    if (!tooOld && total <= maxTotalBytes) break
    try {
      await docker.getImage(candidate.id).remove({ force: true, noprune: false })
      removed.push({
        id: candidate.id,
        submissionId: candidate.submissionId,
        bytes: candidate.bytes,
      })
      total -= candidate.bytes
    } catch (err) {
      // 409: a container started with it meanwhile; 404: removed already.
      log.debug({ imageId: candidate.id, err: errorMessage(err) }, 'image not removed')
    }
  }

  const bytesFreed = removed.reduce((sum, r) => sum + r.bytes, 0)
  if (removed.length > 0) {
    log.info({ removed: removed.length, bytesFreed }, 'removed submission images no longer needed')
  }
  return { removed, kept: all.length - removed.length, bytesFreed }
}

/** Submissions whose image must stay: not confirmed archived, or with a running job. */
async function protectedSubmissions(
  ctx: Pick<AppContext, 'store'>,
  submissionIds: readonly number[],
): Promise<Set<number>> {
  const ids = [...new Set(submissionIds)].filter(Number.isInteger)
  if (ids.length === 0) return new Set()
  const { db } = ctx.store
  const [archived, running] = await Promise.all([
    db
      .selectFrom('submissions')
      .select('id')
      .where('id', 'in', ids)
      .where('archive', '=', 'archived')
      .execute(),
    db
      .selectFrom('jobs')
      .select('submission_id')
      .where('submission_id', 'in', ids)
      .where('state', '=', 'running')
      .execute(),
  ])
  const confirmed = new Set(archived.map((r) => r.id))
  const keep = new Set(ids.filter((id) => !confirmed.has(id)))
  for (const r of running) if (r.submission_id !== null) keep.add(r.submission_id)
  return keep
}
