import { sqliteFactory, type StoreFactory } from '../../queue/support/stores.ts'
import { postgresFactory } from '../../support/postgres.ts'

/**
 * Every store factory, SQLite and PostgreSQL: what test/queue/support/stores.ts exports once
 * the PostgreSQL factory is listed there. conformance.config.ts substitutes this module for
 * it, so the queue and quota suites can run on both dialects before that line lands.
 */
export { sqliteFactory }
export type { StoreFactory }
export const STORE_FACTORIES: readonly StoreFactory[] = [sqliteFactory, postgresFactory]
