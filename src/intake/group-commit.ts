import type { Kysely, Transaction } from 'kysely'

import type { Store } from '../store/database.ts'
import type { Database } from '../store/schema.ts'

/** More than this many writes wait for the next commit: bounds one commit's latency. */
const MAX_BATCH = 256

interface Pending {
  work: (trx: Transaction<Database>) => Promise<unknown>
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
}

/**
 * Group commit for the embedded SQLite store. Every commit there is an fsync (WAL with
 * synchronous=FULL, so a 2xx means durable), and the one connection runs one transaction at
 * a time: at ~3.5 ms per fsync, one transaction per hook caps intake near 300 per second.
 * This runs the units of work that arrive together in ONE transaction and commits once:
 *
 * - each unit is still atomic: if one throws, the batch is rolled back and each unit runs
 *   again in its own transaction, so only the failing one fails;
 * - each unit's promise settles only after its COMMIT, so a caller never answers 2xx for
 *   something not yet durable;
 * - a database that is down fails every unit (each with its own error).
 *
 * Units must only write through the transaction they are given and must not wait on
 * anything outside the database (a unit that awaited the network would hold the batch).
 * PostgreSQL runs transactions concurrently and groups commits itself, so there each unit
 * simply gets its own transaction.
 */
export class GroupCommitter {
  readonly #store: Store
  #queue: Pending[] = []
  #running = false

  constructor(store: Store) {
    this.#store = store
  }

  run<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    if (this.#store.dialect !== 'sqlite') return this.#store.db.transaction().execute(work)
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve: resolve as (value: unknown) => void, reject })
      if (!this.#running) {
        this.#running = true
        // Let the deliveries already read from the sockets join this batch.
        setImmediate(() => void this.#drain())
      }
    })
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_BATCH)
        await commitBatch(this.#store.db, batch)
      }
    } finally {
      this.#running = false
    }
  }
}

/**
 * Runs the batch optimistically in one transaction. If a unit throws, the whole transaction
 * is rolled back and every unit runs again in a transaction of its own, so the failing one
 * fails alone (units only touch the database, so running one again is safe). Savepoints per
 * unit would isolate failures without the re-run but cost two statements per unit on the
 * path that nearly always succeeds.
 */
async function commitBatch(db: Kysely<Database>, batch: Pending[]): Promise<void> {
  if (batch.length > 1) {
    const values: unknown[] = []
    try {
      await db.transaction().execute(async (trx) => {
        for (const unit of batch) values.push(await unit.work(trx))
      })
    } catch {
      values.length = 0
    }
    if (values.length === batch.length) {
      for (const [i, unit] of batch.entries()) unit.resolve(values[i])
      return
    }
  }
  for (const unit of batch) {
    try {
      unit.resolve(await db.transaction().execute(unit.work))
    } catch (error) {
      unit.reject(error)
    }
  }
}

const committers = new WeakMap<Store, GroupCommitter>()

/** The store's committer: one per store, so every writer in the process shares its batches. */
export function groupCommitterFor(store: Store): GroupCommitter {
  let committer = committers.get(store)
  if (!committer) {
    committer = new GroupCommitter(store)
    committers.set(store, committer)
  }
  return committer
}
