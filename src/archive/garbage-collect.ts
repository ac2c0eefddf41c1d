import path from 'node:path'

import type { AppContext } from '../app/context.ts'
import { errorMessage } from '../domain/errors.ts'
import { diskUsage } from './disk-usage.ts'
import { pausePushes, resumePushes, waitForPushesToEnd } from './push-pause.ts'
import { RegistryService } from './registry-service.ts'

/**
 * Registry garbage collection, the only way deleted images give their disk space back.
 * `docker-registry garbage-collect` deletes every blob no manifest references, so a push
 * uploading blobs at the same time would lose them. The sequence:
 *
 *   1. pause proctor's pushes (they wait, nothing fails) and wait for those in flight;
 *   2. restart the registry read-only (pulls, and so re-runs, go on; writes get 405);
 *   3. run garbage-collect on the registry's own config;
 *   4. restart the registry with its own config and resume pushes, on every path.
 *
 * Never with `--delete-untagged`: proctor references images by digest, and a submission's
 * manifest loses its tag when the same tag is pushed again.
 */
export interface GarbageCollectionOptions {
  readonly actor: string
  /** Only report what would be deleted (`--dry-run`); the registry still goes read-only. */
  readonly dryRun?: boolean
  /** How long to wait for pushes in flight (default 10 min). */
  readonly drainTimeoutMs?: number
  readonly signal?: AbortSignal
}

export interface GarbageCollectionResult {
  readonly id: number
  readonly outcome: 'done' | 'error'
  readonly dryRun: boolean
  /** Bytes of the registry's blob files before and after (filesystem storage only). */
  readonly bytesBefore: number | null
  readonly bytesAfter: number | null
  readonly reclaimedBytes: number | null
  readonly blobsEligible: number | null
  readonly manifestsEligible: number | null
  /** How long pushes were paused and the registry read-only. */
  readonly pausedMs: number
  readonly readOnlyMs: number
  readonly output: string
  readonly error: string | null
}

const DEFAULT_DRAIN_TIMEOUT_MS = 10 * 60_000

export async function collectGarbage(
  ctx: AppContext,
  registry: RegistryService,
  options: GarbageCollectionOptions,
): Promise<GarbageCollectionResult> {
  const log = ctx.log.child({ part: 'gc', registry: registry.config.address })
  const dryRun = options.dryRun ?? false
  const run = await ctx.store.db
    .insertInto('gc_runs')
    .values({
      requested_by: options.actor,
      dry_run: dryRun ? 1 : 0,
      started_at: ctx.clock.now().toISOString(),
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  const id = Number(run.id)
  const dataDir = await registry.dataDir()
  const blobsDir = dataDir ? path.join(dataDir, 'docker/registry/v2/blobs') : null

  let pausedAt: number | null = null
  let readOnlyAt: number | null = null
  let pausedMs = 0
  let readOnlyMs = 0
  let bytesBefore: number | null = null
  let bytesAfter: number | null = null
  let gc: Awaited<ReturnType<RegistryService['garbageCollect']>> | null = null
  let error: string | null = null
  try {
    await pausePushes(ctx, options.actor, `registry garbage collection ${id}`)
    pausedAt = Date.now()
    const drained = await waitForPushesToEnd(ctx, {
      timeoutMs: options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
      signal: options.signal,
    })
    if (drained.stalePermits > 0)
      log.warn(
        { stalePermits: drained.stalePermits },
        'removed push permits of processes that died',
      )

    bytesBefore = blobsDir ? (await diskUsage(blobsDir)).fileBytes : null
    await registry.restart('read-only')
    readOnlyAt = Date.now()
    gc = await registry.garbageCollect({ dryRun, signal: options.signal })
  } catch (err) {
    error = errorMessage(err)
    log.error({ err: error }, 'garbage collection failed')
  } finally {
    if (readOnlyAt !== null) {
      try {
        await registry.restart('read-write')
      } catch (err) {
        // Pushes stay paused: resuming them against a read-only or stopped registry would
        // fail every archive. A human must act.
        const message = errorMessage(err)
        log.error(
          { err: message },
          'the registry did not come back read-write; pushes stay paused until it does (scripts/services.sh start, then `proctor gc --resume`)',
        )
        error = error ?? `restoring the registry failed: ${message}`
        pausedAt = null
      }
      readOnlyMs = Date.now() - readOnlyAt
    }
    if (pausedAt !== null) {
      await resumePushes(ctx)
      pausedMs = Date.now() - pausedAt
    }
  }

  bytesAfter = blobsDir ? (await diskUsage(blobsDir)).fileBytes : null
  const result: GarbageCollectionResult = {
    id,
    outcome: error === null ? 'done' : 'error',
    dryRun,
    bytesBefore,
    bytesAfter,
    reclaimedBytes: bytesBefore !== null && bytesAfter !== null ? bytesBefore - bytesAfter : null,
    blobsEligible: gc?.blobsEligible ?? null,
    manifestsEligible: gc?.manifestsEligible ?? null,
    pausedMs,
    readOnlyMs,
    output: gc?.output ?? '',
    error,
  }
  await ctx.store.db
    .updateTable('gc_runs')
    .set({
      finished_at: ctx.clock.now().toISOString(),
      outcome: result.outcome,
      bytes_before: bytesBefore,
      bytes_after: bytesAfter,
      blobs_deleted: dryRun ? 0 : result.blobsEligible,
      output: result.output,
      error,
    })
    .where('id', '=', id)
    .execute()
  log.info(
    { id, outcome: result.outcome, reclaimedBytes: result.reclaimedBytes, pausedMs, readOnlyMs },
    'garbage collection finished',
  )
  return result
}
