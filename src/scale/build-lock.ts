import { setTimeout as sleep } from 'node:timers/promises'

import { sql } from 'kysely'

import type { Store } from '../store/database.ts'

/** What makes two builds the same image (the build cache's key in evaluate.ts). */
export interface BuildKey {
  readonly forge: string
  readonly projectId: string
  readonly commitSha: string
  readonly builder: string
  readonly builderVersion: string
}

/** How often a waiting build asks for the lock again. */
const RETRY_MS = 250

/**
 * Runs `build` while holding the lock for `key`, so two workers (processes or hosts) asked
 * for the same image at once build it once: the second waits, then finds the first one's
 * archived image and reuses it. The caller MUST look for a reusable image again inside
 * `build`, after the lock is taken.
 *
 * - PostgreSQL: a session advisory lock on one pooled connection, held while `build` runs.
 *   A worker killed mid-build loses its connection and with it the lock, at once. Waiting
 *   polls `pg_try_advisory_lock` and holds no connection, so waiting slots cannot drain the
 *   pool. Holding one costs a connection per building slot (slots < the pool's 10).
 * - SQLite: one process owns the database, so an in-process lock is enough.
 *
 * The wait ends early when `signal` aborts (the job was cancelled or its lease lost).
 */
export async function withBuildLock<T>(
  store: Store,
  key: BuildKey,
  signal: AbortSignal | undefined,
  build: () => Promise<T>,
): Promise<T> {
  if (store.dialect !== 'postgres') return withLocalLock(buildLockName(key), build)

  const name = buildLockName(key)
  for (;;) {
    signal?.throwIfAborted()
    // The connection is ours only for one try, or for the whole build once the lock is taken.
    const outcome = await store.db.connection().execute(async (conn) => {
      const { rows } = await sql<{ locked: boolean }>`
        select pg_try_advisory_lock(hashtextextended(${name}, 0)) as locked`.execute(conn)
      if (!rows[0]?.locked) return null
      try {
        return { value: await build() }
      } finally {
        await sql`select pg_advisory_unlock(hashtextextended(${name}, 0))`
          .execute(conn)
          .catch(() => undefined) // a broken connection released it already
      }
    })
    if (outcome) return outcome.value
    await sleep(RETRY_MS, undefined, { signal })
  }
}

/** The lock's name: the key's parts, unambiguous whatever characters they hold. */
export function buildLockName(key: BuildKey): string {
  return `proctor.build:${JSON.stringify([key.forge, key.projectId, key.commitSha, key.builder, key.builderVersion])}`
}

const localLocks = new Map<string, Promise<unknown>>()

async function withLocalLock<T>(name: string, build: () => Promise<T>): Promise<T> {
  const previous = localLocks.get(name) ?? Promise.resolve()
  const run = previous.catch(() => undefined).then(build)
  const tail = run.catch(() => undefined)
  localLocks.set(name, tail)
  try {
    return await run
  } finally {
    if (localLocks.get(name) === tail) localLocks.delete(name)
  }
}
