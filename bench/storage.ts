/**
 * Storage benchmark: 100 submissions built from one base image with small differences,
 * archived in a registry of their own, then retention and garbage collection.
 *
 *   node --import tsx bench/storage.ts [--images 100] [--participants 10] [--file-kib 16]
 *
 * Prints:
 * - archive bytes on the registry's disk (the blob files these images added; the registry
 *   is fresh, so before is empty), and the whole data folder (files, and allocated blocks);
 * - the images' compressed sizes added up as if nothing were shared;
 * - the ideal: the compressed sizes of the distinct layers, the distinct set found from the
 *   images' own layer ids (`docker inspect` RootFS.Layers), not from the registry;
 * - proctor's accounting figure (storageReport) and how long it took, cold and cached;
 * - archive/ideal (goal ≤ 1.05) and proctor/disk (goal within 5%);
 * - retention (keep each participant's best 1 and last 1, no grace) and garbage collection:
 *   the bytes of expired images no kept image shares, and the share of them reclaimed on
 *   disk (goal ≥ 99%).
 *
 * Everything it makes is removed afterwards: images, the registry process and its data.
 */
import { parseArgs } from 'node:util'

import { storageReport } from '../src/archive/accounting.ts'
import { diskUsage } from '../src/archive/disk-usage.ts'
import { collectGarbage } from '../src/archive/garbage-collect.ts'
import { RegistryService } from '../src/archive/registry-service.ts'
import { retentionPolicyFor } from '../src/archive/retention-policy.ts'
import { applyRetention, planRetention } from '../src/archive/retention.ts'
import { MANIFEST_ACCEPT, type PushedImage } from '../src/build/registry.ts'
import { TEST_ENV } from '../test/support/env.ts'
import { assertServicesUp } from '../test/support/services.ts'
import {
  archiveContext,
  docker,
  insertArchived,
  pushRandomImage,
  removeImages,
  silentLog,
} from '../test/archive/support/archive-context.ts'
import { startTestRegistry } from '../test/archive/support/test-registry.ts'

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '100' },
    participants: { type: 'string', default: '10' },
    'file-kib': { type: 'string', default: '16' },
  },
})
const IMAGES = Number(values.images)
const PARTICIPANTS = Number(values.participants)
const FILE_BYTES = Number(values['file-kib']) * 1024

interface Manifest {
  config: { digest: string; size: number }
  layers: { digest: string; size: number }[]
  bytes: number
}

const names = new Set<string>()
await assertServicesUp(['docker', 'images'])
const registry = await startTestRegistry()
const bench = await archiveContext({
  registry: registry.address,
  challenges: [{ id: 'bench', acceptSubmissions: false }],
})
const { ctx } = bench
const namespace = `bench-${Date.now().toString(36)}`

try {
  // ─── build and archive ───────────────────────────────────────────────────────────────
  const started = Date.now()
  const before = await diskUsage(registry.dataDir)
  const pushed: { image: PushedImage & { imageId: string }; submissionId: number }[] = []
  for (let i = 0; i < IMAGES; i++) {
    const participant = `p${String(i % PARTICIPANTS).padStart(2, '0')}`
    const image = await pushRandomImage({
      registry: registry.address,
      repository: `${namespace}/bench/${participant}`,
      tag: `s${i}`,
      base: TEST_ENV.pythonImage,
      bytes: FILE_BYTES,
      names,
    })
    names.add(image.imageId)
    const submissionId = await insertArchived(ctx, {
      challengeId: 'bench',
      participant,
      image,
      score: Math.round(Math.random() * 1000) / 1000,
      createdAt: new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString(),
    })
    pushed.push({ image, submissionId })
    if ((i + 1) % 20 === 0) console.error(`[bench] built and pushed ${i + 1}/${IMAGES}`)
  }
  const buildSeconds = (Date.now() - started) / 1000

  // ─── measure ─────────────────────────────────────────────────────────────────────────
  const after = await diskUsage(registry.dataDir)
  const blobsOnDisk = (await diskUsage(registry.blobsDir)).fileBytes
  const manifests = new Map<string, Manifest>()
  for (const { image } of pushed) manifests.set(image.digest, await readManifest(image))
  const unshared = sum(pushed.map(({ image }) => imageBytes(manifests.get(image.digest))))
  const ideal = await idealBytes(
    pushed.map((p) => p.image),
    manifests,
  )

  const coldStarted = performance.now()
  const report = await storageReport(ctx)
  const coldMs = performance.now() - coldStarted
  const warmStarted = performance.now()
  await storageReport(ctx)
  const warmMs = performance.now() - warmStarted
  const proctorBytes = report.total.bytes

  // ─── retention and garbage collection ────────────────────────────────────────────────
  const definition = ctx.challenges.get('bench')?.definition
  if (!definition) throw new Error('the bench challenge is not loaded')
  const policy = retentionPolicyFor(definition, {
    keepBestPerParticipant: 1,
    keepLastPerParticipant: 1,
    graceDays: 0,
  })
  const plan = await planRetention(ctx, 'bench', policy)
  const expiredRefs = new Set(plan.expire.map((e) => e.reference))
  const expired = pushed.filter((p) => expiredRefs.has(p.image.reference))
  const kept = pushed.filter((p) => !expiredRefs.has(p.image.reference))
  const keptBlobs = new Set(kept.flatMap(({ image }) => blobDigests(image, manifests)))
  const expiredOnly = new Map<string, number>()
  for (const { image } of expired) {
    const m = manifests.get(image.digest)
    if (!m) continue
    for (const [digest, size] of blobsOf(image.digest, m))
      if (!keptBlobs.has(digest)) expiredOnly.set(digest, size)
  }
  const expiredOnlyBytes = sum(expiredOnly.values())

  const retention = await applyRetention(ctx, plan, { actor: 'bench' })
  const beforeGc = (await diskUsage(registry.blobsDir)).fileBytes
  const gc = await collectGarbage(ctx, new RegistryService(registry.admin, silentLog), {
    actor: 'bench',
  })
  const afterGc = (await diskUsage(registry.blobsDir)).fileBytes
  const reclaimed = beforeGc - afterGc
  const afterGcReport = await storageReport(ctx)

  // ─── print ───────────────────────────────────────────────────────────────────────────
  const rows: [string, string][] = [
    [
      'images (participants)',
      `${IMAGES} (${PARTICIPANTS}), ${values['file-kib']} KiB distinct file each, FROM ${TEST_ENV.pythonImage}`,
    ],
    ['build + push', `${buildSeconds.toFixed(1)} s`],
    ['archive on disk: blob files', fmt(blobsOnDisk)],
    ['archive on disk: data dir files (Δ)', fmt(after.fileBytes - before.fileBytes)],
    [
      'archive on disk: data dir blocks (Δ, du -s)',
      fmt(after.allocatedBytes - before.allocatedBytes),
    ],
    ['sum of images, nothing shared', fmt(unshared)],
    [
      'ideal: distinct layers (RootFS.Layers)',
      `${fmt(ideal.bytes)} (${ideal.layers} distinct layers)`,
    ],
    [
      'proctor accounting',
      `${fmt(proctorBytes)} (${report.total.blobs} blobs; ${coldMs.toFixed(0)} ms cold, ${warmMs.toFixed(0)} ms cached)`,
    ],
    ['archive / ideal', `${(blobsOnDisk / ideal.bytes).toFixed(4)} (goal ≤ 1.05)`],
    ['archive (data dir files) / ideal', (after.fileBytes / ideal.bytes).toFixed(4)],
    ['proctor / disk', `${(proctorBytes / blobsOnDisk).toFixed(4)} (goal within 5%)`],
    ['sharing saves', `${fmt(unshared - blobsOnDisk)} (${(unshared / blobsOnDisk).toFixed(1)}×)`],
    [
      'retention: expire / keep',
      `${retention.expired.length} expired, ${retention.failed.length} failed, ${kept.length} kept`,
    ],
    ['retention: plan says frees', fmt(plan.bytesFreed)],
    ['expired images, bytes no kept image shares', fmt(expiredOnlyBytes)],
    ['gc: reclaimed on disk (blob files)', fmt(reclaimed)],
    [
      'gc: reclaimed / expired-only bytes',
      `${((100 * reclaimed) / expiredOnlyBytes).toFixed(2)} % (goal ≥ 99%)`,
    ],
    [
      'gc: outcome, blobs deleted',
      `${gc.outcome}, ${gc.blobsEligible ?? '?'}${gc.error ? ` (${gc.error})` : ''}`,
    ],
    ['gc: pushes paused / registry read-only', `${gc.pausedMs} ms / ${gc.readOnlyMs} ms`],
    ['accounting after gc vs disk', `${fmt(afterGcReport.total.bytes)} vs ${fmt(afterGc)}`],
  ]
  const width = Math.max(...rows.map(([k]) => k.length))
  for (const [key, value] of rows) console.log(`${key.padEnd(width)}  ${value}`)
  console.log(
    JSON.stringify({
      images: IMAGES,
      blobsOnDisk,
      dataDirFiles: after.fileBytes - before.fileBytes,
      dataDirAllocated: after.allocatedBytes - before.allocatedBytes,
      unshared,
      ideal: ideal.bytes,
      proctor: proctorBytes,
      archiveOverIdeal: blobsOnDisk / ideal.bytes,
      proctorOverDisk: proctorBytes / blobsOnDisk,
      expiredImages: retention.expired.length,
      planBytesFreed: plan.bytesFreed,
      expiredOnlyBytes,
      reclaimed,
      reclaimedShare: reclaimed / expiredOnlyBytes,
      afterGcAccounting: afterGcReport.total.bytes,
      afterGcDisk: afterGc,
    }),
  )
} finally {
  await bench.close()
  await removeImages(names)
  await registry.stop()
}

async function readManifest(image: PushedImage): Promise<Manifest> {
  const [, repository] = /^[^/]+\/(.+)@/.exec(image.reference) ?? []
  const response = await fetch(
    `http://${registry.address}/v2/${repository}/manifests/${image.digest}`,
    { headers: { accept: MANIFEST_ACCEPT } },
  )
  const text = await response.text()
  return { ...(JSON.parse(text) as Omit<Manifest, 'bytes'>), bytes: Buffer.byteLength(text) }
}

/** Compressed size of each distinct layer, distinct by the images' own diff ids. */
async function idealBytes(
  images: readonly (PushedImage & { imageId: string })[],
  manifests: Map<string, Manifest>,
): Promise<{ bytes: number; layers: number }> {
  const sizes = new Map<string, number>()
  for (const image of images) {
    const info = await docker.getImage(image.imageId).inspect()
    const manifest = manifests.get(image.digest)
    info.RootFS.Layers?.forEach((diffId, i) => {
      const size = manifest?.layers[i]?.size
      if (size !== undefined && !sizes.has(diffId)) sizes.set(diffId, size)
    })
  }
  return { bytes: sum(sizes.values()), layers: sizes.size }
}

function blobsOf(digest: string, m: Manifest): [string, number][] {
  return [
    [digest, m.bytes],
    [m.config.digest, m.config.size],
    ...m.layers.map((l): [string, number] => [l.digest, l.size]),
  ]
}

function blobDigests(image: PushedImage, manifests: Map<string, Manifest>): string[] {
  const m = manifests.get(image.digest)
  return m ? blobsOf(image.digest, m).map(([d]) => d) : []
}

function imageBytes(m: Manifest | undefined): number {
  return m ? m.bytes + m.config.size + sum(m.layers.map((l) => l.size)) : 0
}

function sum(values: Iterable<number>): number {
  let total = 0
  for (const v of values) total += v
  return total
}

function fmt(bytes: number): string {
  return `${bytes.toLocaleString('en-US')} B (${(bytes / 1024 / 1024).toFixed(2)} MiB)`
}
