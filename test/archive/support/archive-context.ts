import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import Docker from 'dockerode'
import pino from 'pino'

import type { AppContext } from '../../../src/app/context.ts'
import { DockerfileBuilder } from '../../../src/build/dockerfile-builder.ts'
import { MANIFEST_ACCEPT, pushImage, type PushedImage } from '../../../src/build/registry.ts'
import { ChallengeCatalog } from '../../../src/challenges/catalog.ts'
import { challengeSchema, type Challenge } from '../../../src/config/challenge.ts'
import { parseConfig } from '../../../src/config/proctor-config.ts'
import { ManualClock } from '../../../src/domain/clock.ts'
import type { SubmissionState } from '../../../src/domain/states.ts'
import { EmbeddedPlatform } from '../../../src/platform/embedded.ts'
import { JobQueue } from '../../../src/queue/job-queue.ts'
import { migrate, openStore } from '../../../src/store/database.ts'

export const docker = new Docker({ version: 'v1.41' })
export const silentLog = pino({ level: process.env.PROCTOR_TEST_LOG ?? 'silent' })

/**
 * An AppContext on a fresh SQLite file, without API or worker: the archive's functions
 * take nothing else. Challenges are given as partial definitions (defaults fill the rest).
 */
export async function archiveContext(options: {
  registry: string
  challenges?: Record<string, unknown>[]
  start?: string
  /** More configuration (api tokens, forges…). */
  config?: Record<string, unknown>
}): Promise<{ ctx: AppContext; clock: ManualClock; close(): Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'proctor-archive-test-'))
  const config = parseConfig(
    {
      database: { url: `sqlite:${path.join(dir, 'proctor.db')}` },
      registry: { address: options.registry, namespace: 'proctor-test' },
      builder: { workDir: path.join(dir, 'work') },
      ...options.config,
    },
    { env: {} },
  )
  const store = openStore(config.database.url)
  await migrate(store)
  const clock = new ManualClock(options.start ?? '2026-06-01T00:00:00Z')
  const challenges = new Map<string, Challenge>()
  for (const partial of options.challenges ?? []) {
    const definition = challengeSchema.parse({
      title: 'test',
      data: { inputs: 'inputs', labels: 'labels' },
      phases: [{ name: 'predict', image: 'participant' }],
      ...partial,
    })
    challenges.set(definition.id, {
      definition,
      file: path.join(dir, `${definition.id}.yaml`),
      dir,
      inputsDir: dir,
      labelsDir: dir,
    })
  }
  const ctx: AppContext = {
    config,
    store,
    clock,
    log: silentLog,
    queue: new JobQueue(store, clock),
    challenges: new ChallengeCatalog(challenges, silentLog),
    platform: new EmbeddedPlatform(),
  }
  return {
    ctx,
    clock,
    async close() {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

let events = 0

/** An archived submission row: what retention, accounting and re-runs read. */
export async function insertArchived(
  ctx: AppContext,
  options: {
    challengeId: string
    participant: string
    image: PushedImage | null
    score?: number | null
    state?: SubmissionState
    createdAt: string
    pinned?: boolean
  },
): Promise<number> {
  events++
  const row = await ctx.store.db
    .insertInto('submissions')
    .values({
      event_id: 100_000 + events,
      challenge_id: options.challengeId,
      round_id: null,
      forge: 'gitlab',
      project_id: `p-${options.participant}`,
      project_path: `${options.participant}/${options.challengeId}`,
      tag: `v${events}`,
      commit_sha: randomBytes(20).toString('hex'),
      participant_id: null,
      pusher_username: options.participant,
      quota_subject: options.participant,
      authors_json: '[]',
      manifest_extra_json: '{}',
      state: options.state ?? 'scored',
      status_detail: 'test',
      score: options.score ?? null,
      image_ref: options.image?.reference ?? null,
      image_digest: options.image?.digest ?? null,
      archive: options.image ? 'archived' : 'failed',
      pinned: options.pinned ? 1 : 0,
      created_at: options.createdAt,
      updated_at: options.createdAt,
      state_changed_at: options.createdAt,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return Number(row.id)
}

/**
 * Builds `FROM base` plus one file of `bytes` random (incompressible) bytes, and pushes it.
 * Returns the pushed image and the local image id.
 */
export async function pushRandomImage(options: {
  registry: string
  repository: string
  tag: string
  base: string
  bytes: number
  names: Set<string>
}): Promise<PushedImage & { imageId: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'proctor-image-'))
  try {
    writeFileSync(path.join(dir, 'payload.bin'), randomBytes(options.bytes))
    writeFileSync(
      path.join(dir, 'Dockerfile'),
      `FROM ${options.base}\nCOPY payload.bin /payload-${options.tag}.bin\n`,
    )
    const localName = `proctor-test/archive-src:${options.tag}-${randomBytes(3).toString('hex')}`
    options.names.add(localName)
    options.names.add(`${options.registry}/${options.repository}:${options.tag}`)
    const built = await new DockerfileBuilder(docker, silentLog).build({
      contextDir: dir,
      imageName: localName,
      labels: { 'proctor.test': 'archive' },
      timeoutMs: 120_000,
      maxImageBytes: 1024 ** 3,
      onLog: () => undefined,
    })
    const pushed = await pushImage(docker, {
      imageId: built.imageId,
      registry: options.registry,
      repository: options.repository,
      tag: options.tag,
    })
    return { ...pushed, imageId: built.imageId }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export async function removeImages(names: Iterable<string>): Promise<void> {
  for (const name of names) {
    await docker
      .getImage(name)
      .remove({ force: true })
      .catch(() => undefined)
  }
}

export interface Manifest {
  config: { digest: string; size: number }
  layers: { digest: string; size: number }[]
  /** The manifest's own size. */
  bytes: number
}

/** The manifest as the registry serves it, read without proctor's code. */
export async function readManifest(registry: string, image: PushedImage): Promise<Manifest> {
  const [, repository] = /^[^/]+\/(.+)@/.exec(image.reference) ?? []
  const response = await fetch(`http://${registry}/v2/${repository}/manifests/${image.digest}`, {
    headers: { accept: MANIFEST_ACCEPT },
  })
  const text = await response.text()
  return { ...(JSON.parse(text) as Omit<Manifest, 'bytes'>), bytes: Buffer.byteLength(text) }
}
