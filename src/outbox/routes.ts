import { inTransaction, type Executor } from '../store/transaction.ts'
import { reportingDb } from './tables.ts'

/** A configured target and the submissions whose changes it receives. */
export interface OutboxRoute {
  readonly target: string
  readonly audience: 'platform' | 'forge'
  /** For `forge` routes: the forge id whose submissions it reports. */
  readonly forge: string | null
}

export interface RouteSyncResult {
  readonly routes: number
  /** Pending messages for targets no longer configured, now dead (retryable). */
  readonly orphaned: number
}

/**
 * Replaces the stored routes with the configured ones. Run by the process that dispatches
 * (the one serving the API) when it starts: moveSubmission runs in every process, often
 * without configuration in hand, and reads the routes from here.
 *
 * Pending messages for a target that is no longer configured would wait forever: they are
 * marked dead with the reason, so an operator sees them and can retry them once the target
 * is back.
 */
export async function syncOutboxRoutes(
  db: Executor,
  routes: readonly OutboxRoute[],
  now: Date,
): Promise<RouteSyncResult> {
  return inTransaction(db, async (trx) => {
    const rdb = reportingDb(trx)
    const at = now.toISOString()
    await rdb.deleteFrom('outbox_routes').execute()
    if (routes.length > 0) {
      await rdb
        .insertInto('outbox_routes')
        .values(routes.map((r) => ({ ...r, updated_at: at })))
        .execute()
    }

    let orphans = rdb
      .updateTable('outbox')
      .set({
        state: 'dead',
        dead_at: at,
        lease_token: null,
        lease_expires_at: null,
        last_error: 'its target is no longer in the configuration; retry it once it is back',
      })
      .where('state', '=', 'pending')
    if (routes.length > 0) {
      orphans = orphans.where(
        'target',
        'not in',
        routes.map((r) => r.target),
      )
    }
    const result = await orphans.executeTakeFirst()
    return { routes: routes.length, orphaned: Number(result.numUpdatedRows) }
  })
}
