import { randomBytes } from 'node:crypto'

import pg from 'pg'

import { ProctorError } from '../../src/domain/errors.ts'
import { migrate, openStore, type Dialect, type Store } from '../../src/store/database.ts'

/**
 * Stores on the test PostgreSQL (scripts/postgres.sh; scripts/test.sh exports its URL as
 * PROCTOR_TEST_POSTGRES_URL). Each test gets its own schema, named after the test, so tests
 * in parallel files never see each other's rows; the schema is dropped when the store the
 * test opened is closed.
 *
 *   const store = await createPostgresTestStore(context.task.name)
 *   …
 *   await store.close() // drops the schema
 */
export const POSTGRES_URL_VARIABLE = 'PROCTOR_TEST_POSTGRES_URL'

/** The test database's URL, or a ProctorError saying how to start it. */
export function testPostgresUrl(): string {
  const url = process.env[POSTGRES_URL_VARIABLE]
  if (url) return url
  throw new ProctorError(
    'services_down',
    `${POSTGRES_URL_VARIABLE} is not set: run \`bash scripts/postgres.sh start\` and ` +
      `\`export ${POSTGRES_URL_VARIABLE}=$(bash scripts/postgres.sh url)\` (scripts/test.sh does both)`,
  )
}

/** True when the test PostgreSQL is configured (the suites that need it skip otherwise). */
export function hasTestPostgres(): boolean {
  return Boolean(process.env[POSTGRES_URL_VARIABLE])
}

/** Open stores per schema: the schema is dropped when the last of them closes. */
const schemas = new WeakMap<Store, { schema: string; url: string; open: { count: number } }>()

/** A schema name from a test name: lower-case, safe, unique, under PostgreSQL's 63 bytes. */
export function schemaNameFor(testName: string): string {
  const slug = testName
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 40)
  return `t_${slug}_${randomBytes(4).toString('hex')}`
}

/** The URL of `schema` in the test database: every unqualified name resolves there. */
export function urlWithSchema(baseUrl: string, schema: string): string {
  const url = new URL(baseUrl)
  url.searchParams.set('options', `-c search_path=${schema}`)
  return url.toString()
}

/** Creates an empty schema for `testName` and returns its URL (for child processes). */
export async function createTestSchema(testName: string): Promise<{ schema: string; url: string }> {
  const base = testPostgresUrl()
  const schema = schemaNameFor(testName)
  await adminQuery(base, `create schema ${pg.escapeIdentifier(schema)}`)
  return { schema, url: urlWithSchema(base, schema) }
}

export async function dropTestSchema(schema: string): Promise<void> {
  await adminQuery(
    testPostgresUrl(),
    `drop schema if exists ${pg.escapeIdentifier(schema)} cascade`,
  )
}

/**
 * A migrated store in a new schema named after the test. The schema is dropped once this
 * store and every store reopened from it are closed (a test may close the first and go on
 * with a reopened one, as after a restart).
 */
export async function createPostgresTestStore(testName: string): Promise<Store> {
  const { schema, url } = await createTestSchema(testName)
  const store = openCounted(schema, url, { count: 0 })
  await migrate(store)
  return store
}

/** A second pool on the same schema, as another process would have. */
export function reopenPostgresTestStore(store: Store): Promise<Store> {
  const known = schemas.get(store)
  if (!known)
    return Promise.reject(new Error('this store was not opened by createPostgresTestStore'))
  return Promise.resolve(openCounted(known.schema, known.url, known.open))
}

/** The URL a store from createPostgresTestStore connects with (to hand to a subprocess). */
export function postgresTestStoreUrl(store: Store): string {
  const known = schemas.get(store)
  if (!known) throw new Error('this store was not opened by createPostgresTestStore')
  return known.url
}

function openCounted(schema: string, url: string, open: { count: number }): Store {
  const opened = openStore(url)
  open.count++
  let closed = false
  const store: Store = {
    db: opened.db,
    dialect: opened.dialect,
    listen: (channel, onMessage, options) => opened.listen(channel, onMessage, options),
    async close() {
      if (closed) return
      closed = true
      await opened.close()
      if (--open.count === 0) await dropTestSchema(schema)
    },
  }
  schemas.set(store, { schema, url, open })
  return store
}

/** Shaped like test/queue/support/stores.ts's StoreFactory, for the conformance suites. */
export const postgresFactory: {
  readonly dialect: Dialect
  open(testName: string): Promise<Store>
  reopen(store: Store): Promise<Store>
} = {
  dialect: 'postgres',
  open: createPostgresTestStore,
  reopen: reopenPostgresTestStore,
}

async function adminQuery(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(text)
  } finally {
    await client.end()
  }
}
