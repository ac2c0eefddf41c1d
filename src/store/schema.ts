import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely'

import type { ArchiveState, SubmissionState } from '../domain/states.ts'

/**
 * The tables, as Kysely sees them. Times are ISO-8601 UTC strings in both dialects; JSON
 * columns hold text and are parsed at the edges. Ids are integers.
 */
export interface Database {
  participants: ParticipantTable
  participant_identities: ParticipantIdentityTable
  hook_events: HookEventTable
  submissions: SubmissionTable
  submission_events: SubmissionEventTable
  evaluations: EvaluationTable
  stage_runs: StageRunTable
  logs: LogTable
  jobs: JobTable
  job_queues: JobQueueTable
  quota_charges: QuotaChargeTable
  outbox: OutboxTable
  workers: WorkerTable
  api_tokens: ApiTokenTable
  verifications: VerificationTable
  archive_manifests: ArchiveManifestTable
  maintenance: MaintenanceTable
  archive_pushes: ArchivePushTable
  gc_runs: GcRunTable
}

type Id = Generated<number>

export interface ParticipantTable {
  id: Id
  username: string
  display_name: string | null
  team: string | null
  platform_id: string | null
  created_at: string
}

/** How a forge account maps to a participant: (forge, forge_user_id) is unique. */
export interface ParticipantIdentityTable {
  id: Id
  participant_id: number
  forge: string
  forge_user_id: string
  forge_username: string | null
}

export type HookEventStatus = 'pending' | 'processed' | 'ignored' | 'failed'

/** One row per distinct delivery; duplicates bump `duplicate_count` on the first one. */
export interface HookEventTable {
  id: Id
  forge: string
  /** (forge, project id, ref, after): null for ignored deliveries, unique otherwise. */
  delivery_key: string | null
  idempotency_key: string | null
  event_kind: string
  status: HookEventStatus
  reason: string | null
  project_id: string | null
  project_path: string | null
  ref: string | null
  tag: string | null
  after_sha: string | null
  checkout_sha: string | null
  pusher_forge_id: string | null
  pusher_username: string | null
  duplicate_count: ColumnType<number, number | undefined, number>
  submission_id: number | null
  received_at: string
  processed_at: string | null
}

export interface SubmissionTable {
  id: Id
  event_id: number
  challenge_id: string | null
  round_id: string | null
  forge: string
  project_id: string
  project_path: string
  tag: string
  commit_sha: string
  participant_id: number | null
  pusher_username: string | null
  /** The charged subject: a participant's username, or `team:<name>`. */
  quota_subject: string | null
  authors_json: string
  description: string | null
  /** crowdai.json's keys other than the ones proctor reads, kept verbatim. */
  manifest_extra_json: string
  debug: ColumnType<number, number | undefined, number>
  state: SubmissionState
  reason_code: string | null
  reason_message: string | null
  /** What the submission waits for or does now, in words; always set. */
  status_detail: string
  stage: string | null
  attempt: ColumnType<number, number | undefined, number>
  platform_submission_id: string | null
  challenge_snapshot_json: string | null
  data_hash: string | null
  grader_image: string | null
  builder: string | null
  builder_version: string | null
  image_ref: string | null
  image_digest: string | null
  image_reused_from: number | null
  archive: ArchiveState
  archive_error: string | null
  score: number | null
  score_secondary: number | null
  score_details_json: string | null
  created_at: string
  updated_at: string
  state_changed_at: string
  /** Kept by the archive whatever the retention policy says (migration 005). */
  pinned: ColumnType<number, number | undefined, number>
  /** What a rebuild needs beyond the columns above: src/archive/build-inputs.ts. */
  build_inputs_json: string | null
}

/** The timeline: every state change, stage change and note, with its reason. */
export interface SubmissionEventTable {
  id: Id
  submission_id: number
  evaluation_id: number | null
  kind: 'state' | 'stage' | 'progress' | 'note'
  state: string | null
  stage: string | null
  reason_code: string | null
  message: string
  actor: string
  at: string
}

export type EvaluationState = 'queued' | 'running' | 'scored' | 'failed' | 'cancelled'

/** A submission has one or more evaluations; a re-run adds one and never changes another. */
export interface EvaluationTable {
  id: Id
  submission_id: number
  number: number
  kind: 'first' | 'rerun'
  state: EvaluationState
  stage: string | null
  score: number | null
  score_secondary: number | null
  score_details_json: string | null
  reason_code: string | null
  reason_message: string | null
  created_at: string
  started_at: string | null
  finished_at: string | null
  rules: ColumnType<'recorded' | 'current', 'recorded' | 'current' | undefined, 'recorded' | 'current'>
  challenge_snapshot_json: string | null
  data_hash: string | null
  grader_image: string | null
  image_ref: string | null
  requested_by: string | null
  published: ColumnType<number, number | undefined, number>
}

export interface StageRunTable {
  id: Id
  evaluation_id: number
  attempt: number
  stage: string
  started_at: string
  finished_at: string | null
  outcome: string | null
  wall_ms: number | null
  cpu_ms: number | null
  peak_memory_bytes: number | null
  detail_json: string | null
}

/** Captured output of a build or phase, capped: head and tail kept, the middle counted. */
export interface LogTable {
  id: Id
  evaluation_id: number
  stage: string
  content: string
  bytes_total: number
  bytes_elided: number
  created_at: string
}

export type JobState = 'waiting' | 'running' | 'done' | 'failed'
export type JobKind = 'intake' | 'evaluate'

export interface JobTable {
  id: Id
  kind: JobKind
  queue: string
  priority: ColumnType<number, number | undefined, number>
  state: JobState
  event_id: number | null
  submission_id: number | null
  evaluation_id: number | null
  /** Whose job this is, for fairness inside a queue. */
  fairness_key: string | null
  capabilities_json: string
  attempt: ColumnType<number, number | undefined, number>
  max_attempts: number
  run_after: string
  lease_token: string | null
  lease_expires_at: string | null
  worker_id: string | null
  last_error: string | null
  created_at: string
  updated_at: string
  /** The job's place among its queue's fairness keys: claimed lowest first, after priority. */
  fair_seq: ColumnType<number, number | undefined, number>
  /** At most this many running jobs with the same (queue, fairness_key); null: no cap. */
  in_flight_cap: number | null
  /** A running stage's deadline; the reaper fails the job past it with `deadline_reason`. */
  deadline_at: string | null
  deadline_reason: string | null
  /** When the current (or last) attempt was claimed, and when the job ended. */
  claimed_at: string | null
  finished_at: string | null
}

/** One row per queue: its virtual time for fair ordering, and how long a job usually runs. */
export interface JobQueueTable {
  queue: string
  /** The fair_seq of the latest job claimed: where a newly arriving fairness key starts. */
  vtime: ColumnType<number, number | undefined, number>
  /** Moving average of a job's run time (claim to end), for estimated starts. */
  run_ms_avg: number | null
  created_at: string
}

export interface QuotaChargeTable {
  id: Id
  challenge_id: string
  round_id: string | null
  subject: string
  debug: ColumnType<number, number | undefined, number>
  submission_id: number
  charged_at: string
  refunded_at: string | null
  refund_reason: string | null
}

export type OutboxState = 'pending' | 'delivered' | 'dead'

export interface OutboxTable {
  id: Id
  target: string
  submission_id: number
  payload_json: string
  state: OutboxState
  attempts: ColumnType<number, number | undefined, number>
  next_attempt_at: string
  last_error: string | null
  created_at: string
  delivered_at: string | null
}

export interface WorkerTable {
  id: string
  host: string
  queues_json: string
  capabilities_json: string
  slots: number
  state: 'alive' | 'stopped' | 'lost'
  started_at: string
  heartbeat_at: string
}

export interface ApiTokenTable {
  id: Id
  name: string
  token_hash: string
  scope: string
  challenges_json: string | null
  participant_id: number | null
  created_at: string
  revoked_at: string | null
}

export type VerificationOutcome = 'identical' | 'different' | 'error'

/** A rebuild of a submission from its recorded commit, compared with its archived image. */
export interface VerificationTable {
  id: Id
  submission_id: number
  requested_by: string
  started_at: string
  /** Null while the rebuild and comparison run. */
  finished_at: string | null
  outcome: VerificationOutcome | null
  summary_json: string | null
}

/** A registry manifest, by digest: immutable, so it is fetched once. */
export interface ArchiveManifestTable {
  digest: string
  media_type: string
  manifest_bytes: number
  config_digest: string
  config_bytes: number
  /** `[{"digest":"sha256:…","size":123}]`, in the manifest's order. */
  layers_json: string
  fetched_at: string
}

/** One row per switch (`registry`: pushes paused for garbage collection). */
export interface MaintenanceTable {
  key: string
  paused: ColumnType<number, number | undefined, number>
  reason: string | null
  requested_by: string | null
  since: string | null
  updated_at: string
}

/** A push to the archive in flight; garbage collection waits until none is left. */
export interface ArchivePushTable {
  id: Id
  holder: string
  started_at: string
  heartbeat_at: string
}

/** One registry garbage collection. */
export interface GcRunTable {
  id: Id
  requested_by: string
  dry_run: ColumnType<number, number | undefined, number>
  started_at: string
  finished_at: string | null
  outcome: 'done' | 'error' | null
  bytes_before: number | null
  bytes_after: number | null
  blobs_deleted: number | null
  output: string | null
  error: string | null
}

export type Submission = Selectable<SubmissionTable>
export type NewSubmission = Insertable<SubmissionTable>
export type SubmissionUpdate = Updateable<SubmissionTable>
export type HookEvent = Selectable<HookEventTable>
export type Job = Selectable<JobTable>
export type Evaluation = Selectable<EvaluationTable>
export type SubmissionEvent = Selectable<SubmissionEventTable>
export type Participant = Selectable<ParticipantTable>
export type Verification = Selectable<VerificationTable>
