import type { Executor } from '../store/transaction.ts'
import { parseJson } from '../store/transaction.ts'
import type { Submission } from '../store/schema.ts'

/** The public shape of a submission, as the API and CLI show it. */
export function submissionSummary(s: Submission) {
  return {
    id: s.id,
    challengeId: s.challenge_id,
    state: s.state,
    reason: s.reason_code ? { code: s.reason_code, message: s.reason_message } : null,
    statusDetail: s.status_detail,
    stage: s.stage,
    attempt: s.attempt,
    forge: s.forge,
    project: { id: s.project_id, path: s.project_path },
    tag: s.tag,
    commit: s.commit_sha,
    pusher: s.pusher_username,
    authors: parseJson<string[]>(s.authors_json, []),
    description: s.description,
    debug: s.debug === 1,
    manifestExtra: parseJson<Record<string, unknown>>(s.manifest_extra_json, {}),
    score: s.score,
    scoreSecondary: s.score_secondary,
    scoreDetails: parseJson<unknown>(s.score_details_json, null),
    image: {
      reference: s.image_ref,
      digest: s.image_digest,
      archive: s.archive,
      archiveError: s.archive_error,
      reusedFrom: s.image_reused_from,
      builder: s.builder,
      builderVersion: s.builder_version,
    },
    platformSubmissionId: s.platform_submission_id,
    dataHash: s.data_hash,
    createdAt: s.created_at,
    updatedAt: s.updated_at,
    stateChangedAt: s.state_changed_at,
  }
}

/** A submission with its timeline, evaluations, stage runs and the job holding it. */
export async function submissionDetail(db: Executor, submission: Submission) {
  const [timeline, evaluations, job] = await Promise.all([
    db
      .selectFrom('submission_events')
      .selectAll()
      .where('submission_id', '=', submission.id)
      .orderBy('id')
      .execute(),
    db
      .selectFrom('evaluations')
      .selectAll()
      .where('submission_id', '=', submission.id)
      .orderBy('number')
      .execute(),
    db
      .selectFrom('jobs')
      .select([
        'id',
        'state',
        'queue',
        'attempt',
        'max_attempts',
        'worker_id',
        'lease_expires_at',
        'run_after',
        'last_error',
        'updated_at',
      ])
      .where('submission_id', '=', submission.id)
      .orderBy('id', 'desc')
      .executeTakeFirst(),
  ])
  const evaluationIds = evaluations.map((e) => e.id)
  const stages = evaluationIds.length
    ? await db
        .selectFrom('stage_runs')
        .selectAll()
        .where('evaluation_id', 'in', evaluationIds)
        .orderBy('id')
        .execute()
    : []

  return {
    ...submissionSummary(submission),
    timeline: timeline.map((e) => ({
      at: e.at,
      kind: e.kind,
      state: e.state,
      stage: e.stage,
      reasonCode: e.reason_code,
      message: e.message,
      actor: e.actor,
    })),
    evaluations: evaluations.map((e) => ({
      id: e.id,
      number: e.number,
      kind: e.kind,
      state: e.state,
      score: e.score,
      reason: e.reason_code ? { code: e.reason_code, message: e.reason_message } : null,
      stages: stages
        .filter((r) => r.evaluation_id === e.id)
        .map((r) => ({
          stage: r.stage,
          attempt: r.attempt,
          startedAt: r.started_at,
          finishedAt: r.finished_at,
          outcome: r.outcome,
          wallMs: r.wall_ms,
          cpuMs: r.cpu_ms,
          peakMemoryBytes: r.peak_memory_bytes,
        })),
    })),
    job: job
      ? {
          id: job.id,
          state: job.state,
          queue: job.queue,
          attempt: job.attempt,
          maxAttempts: job.max_attempts,
          heldBy: job.worker_id,
          leaseExpiresAt: job.lease_expires_at,
          runAfter: job.run_after,
          lastError: job.last_error,
          since: job.updated_at,
        }
      : null,
  }
}
