import { Transaction, type Kysely } from 'kysely'

import type { Database } from './schema.ts'

/** Either the database or an open transaction: steps that may join a caller's transaction. */
export type Executor = Kysely<Database> | Transaction<Database>

/** Runs `fn` in the caller's transaction if there is one, else in a new one. */
export async function inTransaction<T>(db: Executor, fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  if (db instanceof Transaction) return fn(db)
  return db.transaction().execute(fn)
}

export function parseJson<T>(text: string | null | undefined, fallback: T): T {
  if (text === null || text === undefined || text === '') return fallback
  return JSON.parse(text) as T
}
