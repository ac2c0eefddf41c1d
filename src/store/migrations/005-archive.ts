import type { CreateTableBuilder, Kysely } from 'kysely'

import type { Dialect } from '../dialect.ts'

/**
 * The archive's own records (see docs/archive.md; types in src/store/schema.ts).
 *
 * - `submissions.pinned`: an organizer keeps this image whatever the retention policy says.
 * - `submissions.build_inputs_json`: what a rebuild needs beyond the columns already kept
 *   (base image id, buildpack, build settings, proctor's version), written after the build.
 * - `verifications`: each rebuild-and-compare of a submission and its outcome.
 * - `archive_manifests`: registry manifests by digest (immutable, so cached for good): the
 *   blobs each archived image holds, for storage accounting without asking the registry.
 * - `maintenance`: switches such as `registry` (pushes paused while the registry collects
 *   garbage), one row per switch.
 * - `archive_pushes`: pushes in flight, so garbage collection starts only once they end.
 * - `gc_runs`: each garbage collection, what it reclaimed and how it ended.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  function withId<T extends string>(table: CreateTableBuilder<T, never>) {
    return dialect === 'postgres'
      ? table.addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
      : table.addColumn('id', 'integer', (col) => col.primaryKey().autoIncrement())
  }
  const schema = db.schema

  // SQLite adds one column per ALTER TABLE statement.
  await schema
    .alterTable('submissions')
    .addColumn('pinned', 'integer', (col) => col.notNull().defaultTo(0))
    .execute()
  await schema.alterTable('submissions').addColumn('build_inputs_json', 'text').execute()

  await withId(schema.createTable('verifications'))
    .addColumn('submission_id', 'integer', (col) => col.notNull())
    .addColumn('requested_by', 'text', (col) => col.notNull())
    .addColumn('started_at', 'text', (col) => col.notNull())
    .addColumn('finished_at', 'text')
    .addColumn('outcome', 'text')
    .addColumn('summary_json', 'text')
    .execute()
  await schema
    .createIndex('verifications_submission')
    .on('verifications')
    .columns(['submission_id', 'id'])
    .execute()

  await schema
    .createTable('archive_manifests')
    .addColumn('digest', 'text', (col) => col.primaryKey())
    .addColumn('media_type', 'text', (col) => col.notNull())
    .addColumn('manifest_bytes', 'integer', (col) => col.notNull())
    .addColumn('config_digest', 'text', (col) => col.notNull())
    .addColumn('config_bytes', 'integer', (col) => col.notNull())
    .addColumn('layers_json', 'text', (col) => col.notNull())
    .addColumn('fetched_at', 'text', (col) => col.notNull())
    .execute()

  await schema
    .createTable('maintenance')
    .addColumn('key', 'text', (col) => col.primaryKey())
    .addColumn('paused', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('reason', 'text')
    .addColumn('requested_by', 'text')
    .addColumn('since', 'text')
    .addColumn('updated_at', 'text', (col) => col.notNull())
    .execute()

  await withId(schema.createTable('archive_pushes'))
    .addColumn('holder', 'text', (col) => col.notNull())
    .addColumn('started_at', 'text', (col) => col.notNull())
    .addColumn('heartbeat_at', 'text', (col) => col.notNull())
    .execute()

  await withId(schema.createTable('gc_runs'))
    .addColumn('requested_by', 'text', (col) => col.notNull())
    .addColumn('dry_run', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('started_at', 'text', (col) => col.notNull())
    .addColumn('finished_at', 'text')
    .addColumn('outcome', 'text')
    .addColumn('bytes_before', 'bigint')
    .addColumn('bytes_after', 'bigint')
    .addColumn('blobs_deleted', 'integer')
    .addColumn('output', 'text')
    .addColumn('error', 'text')
    .execute()
}
