import type { Kysely } from 'kysely'

/**
 * Re-runs: an evaluation records what it ran with, so a re-run with the current rules is
 * as auditable as the first run with the recorded ones.
 *
 * - `rules`: `recorded` (the submission's snapshot) or `current` (the challenge as loaded now)
 * - `challenge_snapshot_json`, `data_hash`, `grader_image`: what a `current` re-run used
 * - `image_ref`: the archived image it ran (`name@sha256:…`)
 * - `requested_by`: who asked for it; `published`: whether the result may reach the platform
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const schema = db.schema
  await schema.alterTable('evaluations').addColumn('rules', 'text', (col) => col.notNull().defaultTo('recorded')).execute()
  await schema.alterTable('evaluations').addColumn('challenge_snapshot_json', 'text').execute()
  await schema.alterTable('evaluations').addColumn('data_hash', 'text').execute()
  await schema.alterTable('evaluations').addColumn('grader_image', 'text').execute()
  await schema.alterTable('evaluations').addColumn('image_ref', 'text').execute()
  await schema.alterTable('evaluations').addColumn('requested_by', 'text').execute()
  await schema.alterTable('evaluations').addColumn('published', 'integer', (col) => col.notNull().defaultTo(0)).execute()
}
