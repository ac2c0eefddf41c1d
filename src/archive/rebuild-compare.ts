import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import path from 'node:path'

import type Docker from 'dockerode'
import type { Logger } from 'pino'

import type { AppContext } from '../app/context.ts'
import type { BuildRequest } from '../build/builder.ts'
import { fetchCommit } from '../build/fetch.ts'
import { imageRepository, imageTag } from '../build/image-name.ts'
import { ensureImage } from '../build/pull.ts'
import type { ChallengeDefinition } from '../config/challenge.ts'
import { errorMessage, ProctorError, SubmissionFailure } from '../domain/errors.ts'
import type { Submission } from '../store/schema.ts'
import { parseJson } from '../store/transaction.ts'
import { PROCTOR_VERSION } from '../worker/evaluate.ts'
import { findBaseImage, parseBuildInputs, type BuildInputs } from './build-inputs.ts'
import { exportImageTree, type LayerSummary } from './image-tree.ts'
import { loadManifests } from './manifest-cache.ts'
import { createNoCacheBuilders } from './no-cache-builders.ts'
import { parseImageReference } from './registry-manifests.ts'
import { compareTrees, type TreeComparison } from './tree-diff.ts'

/**
 * One verification's work: fetch the recorded commit, rebuild it with the recorded builder
 * (same version, same settings) and every cache off, export the archived image and the
 * rebuild, and compare their file trees. Throws when any step cannot be done; verify.ts
 * records that as an `error` outcome. The rebuild, and a copy of the archive pulled for
 * the comparison, are removed on every path.
 */
export interface VerifyDeps {
  readonly docker: Docker
  /** repo2docker to rebuild with; the configured one by default. */
  readonly repo2docker?: string
}

export interface ImageSide {
  readonly reference: string
  readonly imageId: string
  /** Uncompressed layer digests (RootFS.Layers) with what each layer holds. */
  readonly layers: readonly LayerSummary[]
  readonly created: string | null
}

export interface VerificationSummary {
  readonly submissionId: number
  readonly commit: string
  readonly project: string
  readonly builder: string
  readonly builderVersion: string
  readonly archive: (ImageSide & { readonly registryLayers: readonly string[] }) | null
  readonly rebuild:
    | (ImageSide & { readonly baseImage: { name: string | null; id: string } | null })
    | null
  readonly recordedBaseImage: BuildInputs['baseImage']
  /** Whether the rebuild started from the base image recorded at build time (null: none recorded). */
  readonly baseImageMatches: boolean | null
  readonly layerDigestsDiffer: boolean | null
  readonly comparison: TreeComparison | null
  readonly error: string | null
  readonly durationMs: number
}

const FETCH_TIMEOUT_MS = 120_000
const MAX_CHECKOUT_BYTES = 1024 * 1024 * 1024

export async function rebuildAndCompare(
  ctx: AppContext,
  verificationId: number,
  s: Submission,
  deps: VerifyDeps,
  log: Logger,
  started: number,
): Promise<VerificationSummary> {
  const definition = parseJson<ChallengeDefinition | null>(s.challenge_snapshot_json, null)
  const inputs = parseBuildInputs(s.build_inputs_json)
  const builderName = s.builder ?? inputs?.settings.builder ?? definition?.build.builder
  if (builderName !== 'repo2docker' && builderName !== 'dockerfile') {
    throw new ProctorError(
      'verify_no_builder',
      `submission ${s.id} records no builder; it cannot be rebuilt`,
    )
  }
  const recordedVersion = s.builder_version ?? inputs?.settings.builderVersion ?? null
  const archiveRef = s.image_ref ?? ''
  const parsedRef = parseImageReference(archiveRef)
  if (!parsedRef)
    throw new ProctorError(
      'verify_no_image',
      `submission ${s.id}'s image ${archiveRef} is not a registry reference by digest`,
    )

  const noCache = await createNoCacheBuilders(
    deps.docker,
    deps.repo2docker ?? ctx.config.builder.repo2docker,
    log,
  )
  const root = ctx.config.builder.workDir
  await mkdir(root, { recursive: true })
  const workDir = await mkdtemp(path.join(root, `verify-s${s.id}-v${verificationId}-`))
  const rebuildName = `proctor-verify/${imageRepository('', s.challenge_id ?? 'none', s.project_path).replace(/^\/+/, '')}:v${verificationId}-${imageTag(s.id, s.commit_sha)}`
  let pulledArchive = false
  let rebuiltId: string | null = null
  try {
    const builder = noCache.builders[builderName]
    const installed = await builder.version()
    if (recordedVersion !== null && installed !== recordedVersion) {
      throw new ProctorError(
        'verify_builder_version',
        `submission ${s.id} was built with ${builderName} ${recordedVersion}; this host has ${installed}. Verify it on a host with ${builderName} ${recordedVersion}`,
      )
    }

    const forge = ctx.config.forges.find((f) => f.id === s.forge)
    if (!forge)
      throw new ProctorError(
        'verify_no_forge',
        `forge ${s.forge} is not configured here; the commit cannot be fetched`,
      )
    const repoDir = path.join(workDir, 'repo')
    await fetchCommit({
      cloneUrl: forge.cloneUrl.replace('{path}', s.project_path),
      commitSha: s.commit_sha,
      dir: repoDir,
      timeoutMs: FETCH_TIMEOUT_MS,
      maxBytes: MAX_CHECKOUT_BYTES,
      logger: log,
    })

    const request: BuildRequest = {
      contextDir: repoDir,
      imageName: rebuildName,
      labels: inputs?.settings.labels ?? {
        'proctor.submission': String(s.id),
        'proctor.challenge': s.challenge_id ?? '',
        'proctor.commit': s.commit_sha,
        'proctor.version': PROCTOR_VERSION,
      },
      timeoutMs: inputs?.settings.timeoutMs ?? (definition?.build.timeSeconds ?? 1800) * 1000,
      memoryBytes:
        inputs?.settings.memoryBytes ?? (definition?.build.memoryMb ?? 4096) * 1024 * 1024,
      maxImageBytes:
        inputs?.settings.maxImageBytes ?? (definition?.build.maxImageMb ?? 8192) * 1024 * 1024,
      onLog: () => undefined,
    }
    let built
    try {
      built = await builder.build(request)
    } catch (err) {
      if (err instanceof SubmissionFailure) {
        throw new ProctorError(
          'verify_build_failed',
          `the recorded commit no longer builds: ${err.message}`,
          { cause: err },
        )
      }
      throw err
    }
    rebuiltId = built.imageId
    const rebuildBase = await findBaseImage(deps.docker, built.imageId, repoDir)

    pulledArchive = (await ensureImage(deps.docker, archiveRef)) === 'pulled'
    const archiveInfo = await deps.docker.getImage(archiveRef).inspect()
    const manifest = (await loadManifests(ctx, [parsedRef])).get(parsedRef.digest) ?? null
    const archiveTree = await exportImageTree(deps.docker, archiveRef)
    const rebuildTree = await exportImageTree(deps.docker, built.imageId)
    const comparison = compareTrees(archiveTree, rebuildTree)

    const recordedBase = inputs?.baseImage ?? null
    return {
      submissionId: s.id,
      commit: s.commit_sha,
      project: s.project_path,
      builder: builderName,
      builderVersion: installed,
      archive: {
        reference: archiveRef,
        imageId: archiveInfo.Id,
        layers: archiveTree.layers,
        created: archiveTree.created,
        registryLayers: manifest?.layers.map((l) => l.digest) ?? [],
      },
      rebuild: {
        reference: rebuildName,
        imageId: built.imageId,
        layers: rebuildTree.layers,
        created: rebuildTree.created,
        baseImage: rebuildBase,
      },
      recordedBaseImage: recordedBase,
      baseImageMatches: recordedBase ? recordedBase.id === rebuildBase?.id : null,
      layerDigestsDiffer:
        archiveTree.layers.length !== rebuildTree.layers.length ||
        archiveTree.layers.some((l, i) => l.diffId !== rebuildTree.layers[i]?.diffId),
      comparison,
      error: null,
      durationMs: Date.now() - started,
    }
  } finally {
    // The rebuild and a copy pulled for the comparison go; the archive keeps its own.
    if (rebuiltId) await removeImage(deps.docker, rebuiltId, log)
    if (pulledArchive) await removeImage(deps.docker, archiveRef, log)
    await rm(workDir, { recursive: true, force: true })
    await noCache.dispose()
  }
}

async function removeImage(docker: Docker, image: string, log: Logger): Promise<void> {
  await docker
    .getImage(image)
    .remove({ force: true })
    .catch((err: unknown) =>
      log.warn(
        { image, err: errorMessage(err) },
        'could not remove an image verification made; remove it by hand',
      ),
    )
}
