import type { Generated, Kysely } from 'kysely'

import type { Database } from '../store/schema.ts'
import type { Executor } from '../store/transaction.ts'

/**
 * The columns and tables reporting adds (migration 003-reporting), typed here so reporting
 * code sees them without widening the shared schema file. `reportingDb(db)` is the same
 * connection or transaction, typed with these.
 *
 * Glossary:
 * - **outbox row** (message): one change of one submission for one target, written in the
 *   transaction that made the change. Its id is its idempotency key.
 * - **target**: where messages go: `platform` (crowdAI), `webhook:<name>`, `forge:<id>`.
 * - **group**: the messages of one (target, submission). A group is delivered strictly in id
 *   order: only its oldest pending message (the head) can be claimed.
 * - **route**: a configured target and which submissions' changes it receives.
 */
export interface OutboxReportingColumns {
  /** What the message says: `announced`, `state`, `progress`, `published`. */
  event: string | null
  lease_token: string | null
  lease_expires_at: string | null
  dead_at: string | null
}

/** Copied from configuration when a dispatching process starts (see routes.ts). */
export interface OutboxRouteTable {
  target: string
  /** `platform`: announced submissions. `forge`: submissions from `forge`. */
  audience: 'platform' | 'forge'
  forge: string | null
  updated_at: string
}

export type AnnouncementState = 'sending' | 'created' | 'refused' | 'failed' | 'uncertain'

/** Every create call made to an external platform, kept so a retry never guesses. */
export interface PlatformAnnouncementTable {
  id: Generated<number>
  submission_id: number
  platform: string
  state: AnnouncementState
  platform_submission_id: string | null
  message: string | null
  started_at: string
  finished_at: string | null
}

/** What proctor has put on the forge for one submission: its issue and commit status. */
export interface ForgeFeedbackTable {
  id: Generated<number>
  submission_id: number
  forge: string
  issue_iid: number | null
  /** `creating` while a create call's outcome is unknown; `created` once its iid is known. */
  issue_state: 'creating' | 'created' | null
  issue_digest: string | null
  issue_updated_at: string | null
  commit_status: string | null
  commit_status_at: string | null
}

export interface LeaderboardReleaseTable {
  id: Generated<number>
  challenge_id: string
  /** `''` for a challenge without rounds. */
  round_id: string
  released_at: string
  released_by: string
}

// A type alias, not an interface: withTables needs an index-signature-compatible type.
export type ReportingTables = {
  outbox: OutboxReportingColumns
  outbox_routes: OutboxRouteTable
  platform_announcements: PlatformAnnouncementTable
  forge_feedback: ForgeFeedbackTable
  leaderboard_releases: LeaderboardReleaseTable
}

export type ReportingDatabase = Database & ReportingTables

/** The same connection or transaction, typed with reporting's columns and tables. */
export function reportingDb(db: Executor): Kysely<ReportingDatabase> {
  // A transaction's withTables returns a transaction on the same connection.
  return (db as Kysely<Database>).withTables<ReportingTables>() as Kysely<ReportingDatabase>
}
