import type { AppContext } from '../app/context.ts'

/** A worker silent this long is lost: three missed presence beats (worker-presence.ts). */
export const LOST_AFTER_MS = 30_000

/**
 * Marks workers that stopped heartbeating as `lost` and returns their ids. Only the row
 * changes: the jobs they held come back through lease expiry in the reaper (a lost worker
 * that is merely slow keeps its leases while it renews them, and its row turns `alive` at
 * its next beat). Call it from the reaper pass.
 */
export async function markLostWorkers(
  ctx: Pick<AppContext, 'store' | 'clock' | 'log'>,
  olderThanMs = LOST_AFTER_MS,
): Promise<string[]> {
  const cutoff = new Date(ctx.clock.now().getTime() - olderThanMs).toISOString()
  const lost = await ctx.store.db
    .updateTable('workers')
    .set({ state: 'lost' })
    .where('state', '=', 'alive')
    .where('heartbeat_at', '<', cutoff)
    .returning(['id', 'host', 'heartbeat_at'])
    .execute()
  for (const worker of lost) {
    ctx.log.warn(
      { workerId: worker.id, host: worker.host, heartbeatAt: worker.heartbeat_at },
      'worker stopped heartbeating; marked lost (its jobs return when their leases expire)',
    )
  }
  return lost.map((w) => w.id)
}
