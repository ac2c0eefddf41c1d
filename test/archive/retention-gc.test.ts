import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { diskUsage } from '../../src/archive/disk-usage.ts'
import { collectGarbage } from '../../src/archive/garbage-collect.ts'
import {
  pausePushes,
  pushPauseState,
  resumePushes,
  waitWhilePushesPaused,
  withPushPermit,
} from '../../src/archive/push-pause.ts'
import { RegistryService } from '../../src/archive/registry-service.ts'
import { retentionPolicyFor } from '../../src/archive/retention-policy.ts'
import { applyRetention, planRetention } from '../../src/archive/retention.ts'
import type { AppContext } from '../../src/app/context.ts'
import {
  deleteManifest,
  manifestExists,
  pushImage,
  type PushedImage,
} from '../../src/build/registry.ts'
import { BadRequestError } from '../../src/domain/errors.ts'
import { createRerun } from '../../src/reruns/create-rerun.ts'
import { TEST_ENV } from '../support/env.ts'
import { assertServicesUp } from '../support/services.ts'
import {
  archiveContext,
  docker,
  insertArchived,
  pushRandomImage,
  readManifest,
  removeImages,
  silentLog,
} from './support/archive-context.ts'
import { startTestRegistry, type TestRegistry } from './support/test-registry.ts'

const KIB = 1024
const names = new Set<string>()
let registry: TestRegistry
let ctx: AppContext
let closeContext: () => Promise<void>

const readManifestOf = (image: PushedImage) => readManifest(registry.address, image)

beforeAll(async () => {
  await assertServicesUp(['docker', 'images'])
  registry = await startTestRegistry()
  const context = await archiveContext({
    registry: registry.address,
    challenges: [{ id: 'gamma', acceptSubmissions: false }],
  })
  ctx = context.ctx
  closeContext = () => context.close()
})

afterAll(async () => {
  await closeContext?.()
  await removeImages(names)
  await registry?.stop()
})

describe('retention and garbage collection', () => {
  const images: Record<string, PushedImage> = {}
  const ids: Record<string, number> = {}
  const image = (name: string): PushedImage => {
    const found = images[name]
    if (!found) throw new Error(`image ${name} was not pushed`)
    return found
  }

  beforeAll(async () => {
    // alice: g1 pinned, g2 her best, g3 neither best nor latest, g4 her latest; bob: g5.
    const specs = [
      ['g1', 'alice', 0.5, '2026-02-01T00:00:00Z', true],
      ['g2', 'alice', 0.9, '2026-02-02T00:00:00Z', false],
      ['g3', 'alice', 0.7, '2026-02-03T00:00:00Z', false],
      ['g4', 'alice', 0.6, '2026-02-04T00:00:00Z', false],
      ['g5', 'bob', 0.8, '2026-02-02T00:00:00Z', false],
    ] as const
    for (const [name, participant, score, createdAt, pinned] of specs) {
      images[name] = await pushRandomImage({
        registry: registry.address,
        repository: `ret/gamma/${participant}`,
        tag: name,
        base: TEST_ENV.busyboxImage,
        bytes: 64 * KIB,
        names,
      })
      ids[name] = await insertArchived(ctx, {
        challengeId: 'gamma',
        participant,
        image: images[name],
        score,
        createdAt,
        pinned,
      })
    }
  })

  const policy = () => {
    const gamma = ctx.challenges.get('gamma')
    if (!gamma) throw new Error('challenge gamma is not loaded')
    return retentionPolicyFor(gamma.definition, {
      keepBestPerParticipant: 1,
      keepLastPerParticipant: 1,
      graceDays: 0,
    })
  }

  it('lists in a dry run what would expire and the bytes it frees, and deletes nothing', async () => {
    const plan = await planRetention(ctx, 'gamma', policy())

    const decided = Object.fromEntries(plan.decisions.map((d) => [d.submissionId, d]))
    expect(decided[ids.g1 ?? 0]?.reasons).toContain('pinned')
    expect(decided[ids.g2 ?? 0]?.reasons).toEqual(expect.arrayContaining(['best', 'leaderboard']))
    expect(decided[ids.g4 ?? 0]?.reasons).toContain('last')
    expect(decided[ids.g5 ?? 0]?.action).toBe('keep')
    expect(decided[ids.g3 ?? 0]).toMatchObject({ action: 'expire', reasons: [] })
    expect(plan.expire).toEqual([{ reference: image('g3').reference, submissionIds: [ids.g3] }])

    const m = await readManifestOf(image('g3'))
    expect(plan.bytesFreed).toBe(m.bytes + m.config.size + (m.layers[1]?.size ?? NaN))
    await expect(
      manifestExists(registry.address, 'ret/gamma/alice', image('g3').digest),
    ).resolves.toBe(true)
  })

  it('deletes the expired manifest, keeps the score, refuses re-runs, and garbage collection reclaims its bytes on disk', async () => {
    const plan = await planRetention(ctx, 'gamma', policy())
    const result = await applyRetention(ctx, plan, { actor: 'test' })

    expect(result.failed).toEqual([])
    expect(result.expired.map((e) => e.reference)).toEqual([image('g3').reference])
    await expect(
      manifestExists(registry.address, 'ret/gamma/alice', image('g3').digest),
    ).resolves.toBe(false)
    const row = await ctx.store.db
      .selectFrom('submissions')
      .selectAll()
      .where('id', '=', ids.g3 ?? 0)
      .executeTakeFirstOrThrow()
    expect(row).toMatchObject({ archive: 'expired', score: 0.7, state: 'scored' })
    await expect(createRerun(ctx, ids.g3 ?? 0, { actor: 'test' })).rejects.toSatisfy(
      (err: unknown) =>
        err instanceof BadRequestError && err.status === 409 && /expired/.test(err.message),
    )

    const before = await diskUsage(registry.blobsDir)
    const gc = await collectGarbage(ctx, new RegistryService(registry.admin, silentLog), {
      actor: 'test',
    })
    const after = await diskUsage(registry.blobsDir)

    expect(gc).toMatchObject({
      outcome: 'done',
      error: null,
      reclaimedBytes: before.fileBytes - after.fileBytes,
    })
    console.log(
      `gc: expected to free ${plan.bytesFreed} B; disk went ${before.fileBytes} → ${after.fileBytes} B (${before.fileBytes - after.fileBytes} B freed)`,
    )
    expect(before.fileBytes - after.fileBytes).toBeGreaterThanOrEqual(0.99 * plan.bytesFreed)
    expect(before.fileBytes - after.fileBytes).toBe(plan.bytesFreed)
    expect((await pushPauseState(ctx)).paused).toBe(false)

    // Every kept image is whole: manifest and every blob.
    for (const name of ['g1', 'g2', 'g4', 'g5'] as const) {
      const m = await readManifestOf(image(name))
      const repository = /^[^/]+\/(.+)@/.exec(image(name).reference)?.[1]
      for (const blob of [m.config, ...m.layers]) {
        const head = await fetch(
          `http://${registry.address}/v2/${repository}/blobs/${blob.digest}`,
          { method: 'HEAD' },
        )
        expect(head.status, `${name} ${blob.digest}`).toBe(200)
      }
    }
  })

  it('holds a push that arrives during garbage collection until the registry is writable again', async () => {
    const late = await pushRandomImage({
      registry: registry.address,
      repository: 'ret/late',
      tag: 'built',
      base: TEST_ENV.busyboxImage,
      bytes: 8 * KIB,
      names,
    })
    await deleteManifest(registry.address, 'ret/late', late.digest)
    names.add(`${registry.address}/ret/late:late`)

    const gc = collectGarbage(ctx, new RegistryService(registry.admin, silentLog), {
      actor: 'test',
    })
    const deadline = Date.now() + 10_000
    while (!(await pushPauseState(ctx)).paused && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20))
    expect((await pushPauseState(ctx)).paused).toBe(true)
    let gcEnded = 0
    void gc.then(() => (gcEnded = Date.now()))

    const pushed = await withPushPermit(ctx, () =>
      pushImage(docker, {
        imageId: late.imageId,
        registry: registry.address,
        repository: 'ret/late',
        tag: 'late',
      }),
    )
    const pushedAt = Date.now()

    expect((await gc).outcome).toBe('done')
    expect(gcEnded).toBeGreaterThan(0)
    expect(pushedAt).toBeGreaterThanOrEqual(gcEnded)
    await expect(manifestExists(registry.address, 'ret/late', pushed.digest)).resolves.toBe(true)
  })

  it('moves a waiting job’s stage deadline back by the time it waited', async () => {
    await ctx.queue.enqueue(ctx.store.db, { kind: 'evaluate', queue: 'gamma', maxAttempts: 1 })
    const job = await ctx.queue.claim({
      workerId: 'test',
      queues: ['gamma'],
      capabilities: [],
      leaseMs: 60_000,
    })
    if (!job) throw new Error('no job claimed')
    const deadline = new Date('2026-06-01T01:00:00Z')
    await ctx.queue.setDeadline(ctx.store.db, job, deadline, 'infrastructure')

    await pausePushes(ctx, 'test', 'deadline test')
    const waiting = waitWhilePushesPaused(ctx, undefined, { job, pollMs: 20 })
    await new Promise((r) => setTimeout(r, 300))
    const during = await ctx.store.db
      .selectFrom('jobs')
      .select(['deadline_at'])
      .where('id', '=', job.id)
      .executeTakeFirstOrThrow()
    await resumePushes(ctx)
    const { waitedMs } = await waiting
    const after = await ctx.store.db
      .selectFrom('jobs')
      .select(['deadline_at', 'deadline_reason'])
      .where('id', '=', job.id)
      .executeTakeFirstOrThrow()

    expect(during.deadline_at).toBeNull()
    expect(waitedMs).toBeGreaterThanOrEqual(250)
    expect(after).toEqual({
      deadline_at: new Date(deadline.getTime() + waitedMs).toISOString(),
      deadline_reason: 'infrastructure',
    })
  })

  it('refuses a second pause while one holds the switch', async () => {
    await pausePushes(ctx, 'first', 'test')
    await expect(pausePushes(ctx, 'second', 'test')).rejects.toMatchObject({
      status: 409,
      code: 'pushes_paused',
    })
    await resumePushes(ctx)
  })
})

describe('the registry switched read-only', () => {
  it('refuses deletes while read-only and takes them again after the restore', async () => {
    const ro = await pushRandomImage({
      registry: registry.address,
      repository: 'ro/test',
      tag: 'ro',
      base: TEST_ENV.busyboxImage,
      bytes: KIB,
      names,
    })
    const service = new RegistryService(registry.admin, silentLog)

    await service.restart('read-only')
    try {
      await expect(deleteManifest(registry.address, 'ro/test', ro.digest)).rejects.toThrow(
        /405.*read-only/,
      )
      await expect(manifestExists(registry.address, 'ro/test', ro.digest)).resolves.toBe(true)
    } finally {
      await service.restart('read-write')
    }
    await expect(deleteManifest(registry.address, 'ro/test', ro.digest)).resolves.toBe(true)
  })
})
