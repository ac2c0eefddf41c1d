import type { AppContext } from '../app/context.ts'
import type { RegistryAuth } from '../build/registry.ts'
import { parseJson } from '../store/transaction.ts'
import {
  fetchManifest,
  type BlobRef,
  type ImageManifest,
  type ImageReference,
} from './registry-manifests.ts'

/** Manifests read at once from the registry. */
const CONCURRENCY = 8

/**
 * The manifests of these images, from the `archive_manifests` table or, once, from the
 * registry. A manifest is addressed by its digest and never changes, so the cache never goes
 * stale; a digest the registry no longer has maps to null (and is asked again next time).
 */
export async function loadManifests(
  ctx: AppContext,
  references: readonly ImageReference[],
  signal?: AbortSignal,
): Promise<Map<string, ImageManifest | null>> {
  const { db } = ctx.store
  const found = new Map<string, ImageManifest | null>()
  const digests = [...new Set(references.map((r) => r.digest))]
  for (let i = 0; i < digests.length; i += 500) {
    const rows = await db
      .selectFrom('archive_manifests')
      .selectAll()
      .where('digest', 'in', digests.slice(i, i + 500))
      .execute()
    for (const row of rows) {
      found.set(row.digest, {
        digest: row.digest,
        mediaType: row.media_type,
        manifestBytes: Number(row.manifest_bytes),
        config: { digest: row.config_digest, size: Number(row.config_bytes) },
        layers: parseJson<BlobRef[]>(row.layers_json, []),
      })
    }
  }

  const missing = new Map<string, ImageReference>()
  for (const ref of references) if (!found.has(ref.digest)) missing.set(ref.digest, ref)
  const queue = [...missing.values()]
  async function fetchNext(): Promise<void> {
    for (let ref = queue.shift(); ref; ref = queue.shift()) {
      const manifest = await fetchManifest(ref.registry, ref.repository, ref.digest, {
        auth: authFor(ctx, ref.registry),
        signal,
      })
      found.set(ref.digest, manifest)
      if (manifest) await remember(ctx, manifest)
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, fetchNext))
  return found
}

async function remember(ctx: AppContext, manifest: ImageManifest): Promise<void> {
  await ctx.store.db
    .insertInto('archive_manifests')
    .values({
      digest: manifest.digest,
      media_type: manifest.mediaType,
      manifest_bytes: manifest.manifestBytes,
      config_digest: manifest.config.digest,
      config_bytes: manifest.config.size,
      layers_json: JSON.stringify(manifest.layers),
      fetched_at: ctx.clock.now().toISOString(),
    })
    .onConflict((oc) => oc.column('digest').doNothing())
    .execute()
}

/** The configured credentials, for the configured registry only. */
export function authFor(ctx: AppContext, registry: string): RegistryAuth | undefined {
  const configured = ctx.config.registry
  if (registry !== configured.address.replace(/^https?:\/\//, '').replace(/\/+$/, '')) {
    return undefined
  }
  return configured.username && configured.password
    ? { username: configured.username, password: configured.password }
    : undefined
}
