import type { CreateTableBuilder, Kysely } from 'kysely'

import type { Dialect } from '../dialect.ts'

/**
 * Reporting: the outbox dispatcher's leases, where messages go, what was announced to an
 * external platform, what proctor put on the forge, and leaderboard releases (see
 * docs/reporting.md; types in src/outbox/tables.ts). Whether a re-run's result may reach the
 * platform is `evaluations.published` (004-reruns).
 *
 * - `outbox.event`, `outbox.lease_token`, `outbox.lease_expires_at`, `outbox.dead_at`: a
 *   dispatcher claims a group's head with a lease, like a worker claims a job.
 * - `outbox_routes`: the configured targets, copied in by the dispatching process so that
 *   every transaction that moves a submission can write its outbox rows.
 * - `platform_announcements`: each create call made to an external platform and its outcome.
 * - `forge_feedback`: per (submission, forge): the iid and text digest, the last
 *   commit status posted.
 * - `leaderboard_releases`: hidden scores released for a challenge round.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  function withId<T extends string>(table: CreateTableBuilder<T, never>) {
    return dialect === 'postgres'
      ? table.addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
      : table.addColumn('id', 'integer', (col) => col.primaryKey().autoIncrement())
  }
  const schema = db.schema

  // SQLite adds one column per ALTER TABLE statement.
  await schema.alterTable('outbox').addColumn('event', 'text').execute()
  await schema.alterTable('outbox').addColumn('lease_token', 'text').execute()
  await schema.alterTable('outbox').addColumn('lease_expires_at', 'text').execute()
  await schema.alterTable('outbox').addColumn('dead_at', 'text').execute()
  await schema
    .createIndex('outbox_due')
    .on('outbox')
    .columns(['state', 'next_attempt_at', 'id'])
    .execute()

  await schema
    .createTable('outbox_routes')
    .addColumn('target', 'text', (col) => col.primaryKey())
    .addColumn('audience', 'text', (col) => col.notNull())
    .addColumn('forge', 'text')
    .addColumn('updated_at', 'text', (col) => col.notNull())
    .execute()

  await withId(schema.createTable('platform_announcements'))
    .addColumn('submission_id', 'integer', (col) => col.notNull())
    .addColumn('platform', 'text', (col) => col.notNull())
    .addColumn('state', 'text', (col) => col.notNull())
    .addColumn('platform_submission_id', 'text')
    .addColumn('message', 'text')
    .addColumn('started_at', 'text', (col) => col.notNull())
    .addColumn('finished_at', 'text')
    .execute()
  await schema
    .createIndex('platform_announcements_submission')
    .on('platform_announcements')
    .columns(['submission_id', 'id'])
    .execute()

  await withId(schema.createTable('forge_feedback'))
    .addColumn('submission_id', 'integer', (col) => col.notNull())
    .addColumn('forge', 'text', (col) => col.notNull())
    .addColumn('issue_iid', 'integer')
    .addColumn('issue_state', 'text')
    .addColumn('issue_digest', 'text')
    .addColumn('issue_updated_at', 'text')
    .addColumn('commit_status', 'text')
    .addColumn('commit_status_at', 'text')
    .addUniqueConstraint('forge_feedback_submission', ['submission_id', 'forge'])
    .execute()

  await withId(schema.createTable('leaderboard_releases'))
    .addColumn('challenge_id', 'text', (col) => col.notNull())
    .addColumn('round_id', 'text', (col) => col.notNull())
    .addColumn('released_at', 'text', (col) => col.notNull())
    .addColumn('released_by', 'text', (col) => col.notNull())
    .addUniqueConstraint('leaderboard_releases_round', ['challenge_id', 'round_id'])
    .execute()
}
