import { mkdirSync } from 'node:fs'
import path from 'node:path'

import SQLite from 'better-sqlite3'
import { Kysely, Migrator, sql, PostgresDialect, SqliteDialect, type Migration } from 'kysely'
import pg from 'pg'

import { ProctorError } from '../domain/errors.ts'
import * as initial from './migrations/001-initial.ts'
import * as scheduling from './migrations/002-scheduling.ts'
import * as reporting from './migrations/003-reporting.ts'
import * as reruns from './migrations/004-reruns.ts'
import * as archive from './migrations/005-archive.ts'
import type { Database } from './schema.ts'

import type { Dialect } from './dialect.ts'

export type { Dialect }

export interface Store {
  readonly db: Kysely<Database>
  readonly dialect: Dialect
  close(): Promise<void>
}

/** Migrations in order. Each takes the dialect so one source serves both. */
const MIGRATIONS: ReadonlyArray<{
  name: string
  up: (db: Kysely<unknown>, dialect: Dialect) => Promise<void>
}> = [
  { name: '001-initial', up: initial.up },
  { name: '002-scheduling', up: scheduling.up },
  { name: '003-reporting', up: reporting.up },
  { name: '004-reruns', up: reruns.up },
  { name: '005-archive', up: archive.up },
]

export const SCHEMA_VERSION = MIGRATIONS.at(-1)?.name ?? ''

/**
 * Opens the store named by a URL: `sqlite:<path>` (or a bare path, or `:memory:`) or
 * `postgres://…`. The embedded SQLite file is owned by one process: WAL mode with
 * synchronous=FULL, so a committed write survives a crash and a 2xx means committed.
 */
export function openStore(url: string): Store {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const pool = new pg.Pool({ connectionString: url, max: 10 })
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
    return { db, dialect: 'postgres', close: () => db.destroy() }
  }

  const file = url.replace(/^sqlite:/, '')
  if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
  const sqlite = new SQLite(file)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = FULL')
  sqlite.pragma('busy_timeout = 5000')
  sqlite.pragma('foreign_keys = ON')
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) })
  return { db, dialect: 'sqlite', close: () => db.destroy() }
}

function migrator(store: Store): Migrator {
  const migrations: Record<string, Migration> = {}
  for (const m of MIGRATIONS) {
    migrations[m.name] = { up: (db) => m.up(db, store.dialect) }
  }
  return new Migrator({
    db: store.db,
    provider: { getMigrations: () => Promise.resolve(migrations) },
  })
}

/** Applies every pending migration. Returns the names applied. */
export async function migrate(store: Store): Promise<string[]> {
  const { error, results } = await migrator(store).migrateToLatest()
  if (error) {
    throw new ProctorError('migration_failed', `migration failed: ${String(error)}`, { cause: error })
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName)
}

/**
 * Refuses a database that a newer proctor has migrated: running old code on a new schema
 * could write rows the new code cannot read.
 */
export async function assertSchemaNotAhead(store: Store): Promise<void> {
  const known = new Set(MIGRATIONS.map((m) => m.name))
  const tables = await store.db.introspection.getTables()
  if (!tables.some((t) => t.name === 'kysely_migration')) return

  const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(store.db)
  const unknown = applied.rows.filter((m) => !known.has(m.name))
  if (unknown.length > 0) {
    throw new ProctorError(
      'schema_ahead',
      `the database has migrations this proctor does not know (${unknown.map((m) => m.name).join(', ')}); ` +
        'upgrade proctor to the version that applied them, or restore a backup taken before',
    )
  }
}
