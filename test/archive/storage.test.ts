import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { bytesFreedBy, storageReport } from '../../src/archive/accounting.ts'
import { diskUsage } from '../../src/archive/disk-usage.ts'
import type { AppContext } from '../../src/app/context.ts'
import type { PushedImage } from '../../src/build/registry.ts'
import { TEST_ENV } from '../support/env.ts'
import { assertServicesUp } from '../support/services.ts'
import {
  archiveContext,
  insertArchived,
  pushRandomImage,
  readManifest,
  removeImages,
  type Manifest,
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
    challenges: [{ id: 'alpha' }, { id: 'beta' }],
  })
  ctx = context.ctx
  closeContext = () => context.close()
})

afterAll(async () => {
  await closeContext?.()
  await removeImages(names)
  await registry?.stop()
})

describe('storage accounting', () => {
  let a: PushedImage & { imageId: string }
  let b: PushedImage & { imageId: string }
  let c: PushedImage & { imageId: string }
  let ids: { a: number; b: number; c: number }

  beforeAll(async () => {
    a = await pushRandomImage({
      registry: registry.address,
      repository: 'acct/alpha/alice',
      tag: 'a',
      base: TEST_ENV.busyboxImage,
      bytes: 40 * KIB,
      names,
    })
    b = await pushRandomImage({
      registry: registry.address,
      repository: 'acct/alpha/bob',
      tag: 'b',
      base: TEST_ENV.busyboxImage,
      bytes: 20 * KIB,
      names,
    })
    // C is built on A: it shares the busybox layer and A's layer.
    c = await pushRandomImage({
      registry: registry.address,
      repository: 'acct/beta/alice',
      tag: 'c',
      base: `${registry.address}/acct/alpha/alice:a`,
      bytes: 30 * KIB,
      names,
    })
    ids = {
      a: await insertArchived(ctx, {
        challengeId: 'alpha',
        participant: 'alice',
        image: a,
        score: 0.5,
        createdAt: '2026-01-02T00:00:00Z',
      }),
      b: await insertArchived(ctx, {
        challengeId: 'alpha',
        participant: 'bob',
        image: b,
        score: 0.6,
        createdAt: '2026-01-03T00:00:00Z',
      }),
      c: await insertArchived(ctx, {
        challengeId: 'beta',
        participant: 'alice',
        image: c,
        score: 0.7,
        createdAt: '2026-01-04T00:00:00Z',
      }),
    }
  })

  it('counts each blob once and matches the bytes the registry stores on disk', async () => {
    const report = await storageReport(ctx)

    // A fresh registry holds exactly these three images' blobs.
    const disk = await diskUsage(registry.blobsDir)
    expect(report.total.bytes).toBe(disk.fileBytes)
    expect(report.total.images).toBe(3)
    expect(report.total.blobs).toBe(disk.files)
    // Shared: the busybox layer by all three, A's layer by A and C.
    const [ma, mb, mc] = await Promise.all([
      readManifestOf(a),
      readManifestOf(b),
      readManifestOf(c),
    ])
    const busybox = ma.layers[0]?.size ?? NaN
    expect(mb.layers[0]?.digest).toBe(ma.layers[0]?.digest)
    expect(mc.layers.slice(0, 2).map((l) => l.digest)).toEqual(ma.layers.map((l) => l.digest))
    expect(report.total.unsharedBytes - report.total.bytes).toBe(
      2 * busybox + (ma.layers[1]?.size ?? NaN),
    )
  })

  it('gives per challenge and participant what they hold and what only they hold', async () => {
    const report = await storageReport(ctx)
    const [ma, mb, mc] = await Promise.all([
      readManifestOf(a),
      readManifestOf(b),
      readManifestOf(c),
    ])
    const own = (m: Manifest) => m.bytes + m.config.size
    const layer = (m: Manifest, i: number) => m.layers[i]?.size ?? NaN

    const alpha = report.challenges.find((x) => x.challengeId === 'alpha')
    const beta = report.challenges.find((x) => x.challengeId === 'beta')
    expect(alpha).toMatchObject({
      images: 2,
      bytes: own(ma) + own(mb) + layer(ma, 0) + layer(ma, 1) + layer(mb, 1),
    })
    // A's layer is also C's (beta): deleting alpha would not free it.
    expect(alpha?.exclusiveBytes).toBe(own(ma) + own(mb) + layer(mb, 1))
    expect(beta).toMatchObject({
      images: 1,
      bytes: own(mc) + layer(mc, 0) + layer(mc, 1) + layer(mc, 2),
      exclusiveBytes: own(mc) + layer(mc, 2),
    })
    expect(alpha?.participants.map((p) => [p.participant, p.images])).toEqual([
      ['alice', 1],
      ['bob', 1],
    ])
    expect(alpha?.participants.find((p) => p.participant === 'bob')?.exclusiveBytes).toBe(
      own(mb) + layer(mb, 1),
    )

    const onlyBeta = await storageReport(ctx, { challenge: 'beta', participant: 'alice' })
    expect(onlyBeta.challenges.map((x) => x.challengeId)).toEqual(['beta'])
    expect(onlyBeta.total.bytes).toBe(report.total.bytes)
  })

  it('says what deleting a set of images would free: only blobs no other image uses', async () => {
    const [ma, mc] = await Promise.all([readManifestOf(a), readManifestOf(c)])

    expect((await bytesFreedBy(ctx, [ids.c])).bytes).toBe(
      mc.bytes + mc.config.size + (mc.layers[2]?.size ?? NaN),
    )
    // A's layers live on in B (busybox) and C (A's own layer).
    expect((await bytesFreedBy(ctx, [ids.a])).bytes).toBe(ma.bytes + ma.config.size)
    expect((await bytesFreedBy(ctx, [ids.a, ids.c])).bytes).toBe(
      ma.bytes +
        ma.config.size +
        (ma.layers[1]?.size ?? NaN) +
        mc.bytes +
        mc.config.size +
        (mc.layers[2]?.size ?? NaN),
    )
  })
})
