import { mkdirSync } from 'node:fs'
import path from 'node:path'

import SQLite from 'better-sqlite3'
import { Kysely, Migrator, sql, PostgresDialect, SqliteDialect, type Migration } from 'kysely'
import pg from 'pg'

import { errorMessage, ProctorError } from '../domain/errors.ts'
import * as initial from './migrations/001-initial.ts'
import * as scheduling from './migrations/002-scheduling.ts'
import * as reporting from './migrations/003-reporting.ts'
import * as reruns from './migrations/004-reruns.ts'
import * as archive from './migrations/005-archive.ts'
import * as jobNotify from './migrations/006-job-notify.ts'
import { listenPostgres, type Listener, type ListenOptions } from './listener.ts'
import type { Database } from './schema.ts'

import type { Dialect } from './dialect.ts'

export type { Dialect, Listener, ListenOptions }

export interface Store {
  readonly db: Kysely<Database>
  readonly dialect: Dialect
  /**
   * Subscribes to a notification channel (PostgreSQL LISTEN) on a connection of its own.
   * On SQLite, one process owns the database and wakes itself in memory: this listener
   * never fires.
   */
  listen(
    channel: string,
    onMessage: (payload: string) => void,
    options?: ListenOptions,
  ): Promise<Listener>
  close(): Promise<void>
}

/** Connections per process to PostgreSQL; a worker with N slots uses at most N + 2 at once. */
const POSTGRES_POOL_MAX = 10

/**
 * pg returns int8 (bigint ids, count(*)) and numeric as strings, to be exact past 2^53.
 * proctor's ids and counts stay far below that, and the schema says they are numbers: parse
 * them as numbers for this store's pool only, leaving other pg users in the process alone.
 */
const INT8_OID = 20
const NUMERIC_OID = 1700
const postgresTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format: 'text' | 'binary' = 'text') => {
    if (oid === INT8_OID || oid === NUMERIC_OID) return (value: string) => Number(value)
    return pg.types.getTypeParser(oid, format) as (value: string) => unknown
  }) as pg.CustomTypesConfig['getTypeParser'],
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
  { name: '006-job-notify', up: jobNotify.up },
]

export const SCHEMA_VERSION = MIGRATIONS.at(-1)?.name ?? ''

/**
 * Opens the store named by a URL: `sqlite:<path>` (or a bare path, or `:memory:`) or
 * `postgres://…`. The embedded SQLite file is owned by one process: WAL mode with
 * synchronous=FULL, so a committed write survives a crash and a 2xx means committed.
 */
export function openStore(url: string): Store {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const pool = new pg.Pool({
      connectionString: url,
      max: POSTGRES_POOL_MAX,
      types: postgresTypes,
      // While the database is down a query fails within this, instead of waiting forever
      // for a connection: callers see an error (503, a retried claim) and try again.
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
    })
    // An idle pooled connection that breaks (the server restarted) emits 'error' on the pool;
    // unheard, it would crash the process. The pool drops it; the next query opens another.
    pool.on('error', () => undefined)
    // The same for a connection checked out while the server goes away between queries (a
    // transaction waiting on something else): without a listener the process would crash.
    // The query in flight fails; the pool drops the broken connection when it is released.
    pool.on('connect', (client) => client.on('error', () => undefined))
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
    return {
      db,
      dialect: 'postgres',
      listen: (channel, onMessage, options) => listenPostgres(url, channel, onMessage, options),
      close: () => db.destroy(),
    }
  }

  const file = url.replace(/^sqlite:/, '')
  if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
  const sqlite = new SQLite(file)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = FULL')
  sqlite.pragma('busy_timeout = 5000')
  sqlite.pragma('foreign_keys = ON')
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) })
  return {
    db,
    dialect: 'sqlite',
    listen: () => Promise.resolve(SILENT_LISTENER),
    close: () => db.destroy(),
  }
}

const SILENT_LISTENER: Listener = { connected: true, close: () => Promise.resolve() }

async function migrator(store: Store): Promise<Migrator> {
  const migrations: Record<string, Migration> = {}
  for (const m of MIGRATIONS) {
    migrations[m.name] = { up: (db) => m.up(db, store.dialect) }
  }
  return new Migrator({
    db: store.db,
    provider: { getMigrations: () => Promise.resolve(migrations) },
    // Kysely looks for its migration table in any schema unless told which: with proctor in
    // a schema of its own (one per test, or beside other applications), name the current one.
    migrationTableSchema: await currentSchema(store),
  })
}

/** PostgreSQL's schema for unqualified names (the search_path's first); none on SQLite. */
async function currentSchema(store: Store): Promise<string | undefined> {
  if (store.dialect !== 'postgres') return undefined
  const result = await sql<{ schema: string }>`select current_schema() as schema`.execute(store.db)
  return result.rows[0]?.schema
}

/** Applies every pending migration. Returns the names applied. */
export async function migrate(store: Store): Promise<string[]> {
  const { error, results } = await (await migrator(store)).migrateToLatest()
  if (error) {
    throw new ProctorError('migration_failed', `migration failed: ${errorMessage(error)}`, {
      cause: error,
    })
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName)
}

/**
 * Refuses a database that a newer proctor has migrated: running old code on a new schema
 * could write rows the new code cannot read.
 */
export async function assertSchemaNotAhead(store: Store): Promise<void> {
  const known = new Set(MIGRATIONS.map((m) => m.name))
  if (!(await hasMigrationTable(store))) return

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

/** Whether this store's schema has Kysely's migration table (not some other schema's). */
async function hasMigrationTable(store: Store): Promise<boolean> {
  const found =
    store.dialect === 'postgres'
      ? await sql<{ found: number }>`select 1 as found
          where to_regclass('kysely_migration') is not null`.execute(store.db)
      : await sql<{ found: number }>`select 1 as found from sqlite_master
          where type = 'table' and name = 'kysely_migration'`.execute(store.db)
  return found.rows.length > 0
}
