import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

import { migrate, openStore, type Dialect, type Store } from '../../../src/store/database.ts'
import { postgresFactory } from '../../support/postgres.ts'

/**
 * Opens a migrated store of one dialect for one test. The queue and quota specs loop over
 * every factory here, so the same behaviour is checked on each database: SQLite now; a
 * PostgreSQL factory (one schema per test, named after it) joins when that dialect lands.
 */
export interface StoreFactory {
  readonly dialect: Dialect
  open(testName: string): Promise<Store>
  /** A second connection to the same database, as another process would have. */
  reopen(store: Store): Promise<Store>
}

let root: string | undefined
const files = new WeakMap<Store, string>()
let counter = 0

/** Each test gets its own SQLite file (WAL), named after the test, in one temp folder. */
export const sqliteFactory: StoreFactory = {
  dialect: 'sqlite',
  async open(testName) {
    root ??= mkdtempSync(path.join(tmpdir(), 'proctor-queue-'))
    const slug = testName
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .slice(0, 60)
    const file = path.join(root, `${String(++counter).padStart(3, '0')}-${slug}.db`)
    const store = openStore(`sqlite:${file}`)
    await migrate(store)
    files.set(store, file)
    return store
  },
  reopen(store) {
    const file = files.get(store)
    if (!file) return Promise.reject(new Error('this store was not opened by the SQLite factory'))
    return Promise.resolve(openStore(`sqlite:${file}`))
  },
}

// PostgreSQL joins when a server is configured (scripts/test.sh starts one and sets the URL).
export const STORE_FACTORIES: readonly StoreFactory[] = process.env.PROCTOR_TEST_POSTGRES_URL
  ? [sqliteFactory, postgresFactory]
  : [sqliteFactory]
