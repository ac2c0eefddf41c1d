import type { Logger } from 'pino'

import type { AppContext } from '../app/context.ts'
import { BadRequestError, ProctorError } from '../domain/errors.ts'
import type { Submission, VerificationOutcome } from '../store/schema.ts'
import { parseJson } from '../store/transaction.ts'
import { appendTimeline } from '../submissions/timeline.ts'
import { parseBuildInputs } from './build-inputs.ts'
import { rebuildAndCompare, type VerificationSummary, type VerifyDeps } from './rebuild-compare.ts'

export type { ImageSide, VerificationSummary, VerifyDeps } from './rebuild-compare.ts'

/**
 * Verification: rebuild a submission from its recorded commit, with its recorded builder
 * and version and settings and no cache of any kind, and compare the result with the
 * archived image file by file (tree-diff.ts). The outcome is `identical`, `different` (the
 * files that differ are named, with the layer each came from) or `error` (the rebuild could
 * not be made or compared: the reason says why). Layer digests are shown but never compared:
 * a rebuild stamps new times into every layer, so they always differ.
 *
 *   const { verificationId, done } = await requestVerification(ctx, 42, { actor: 'ops', docker })
 *   const { outcome, summary } = await done
 */
export interface VerificationRecord {
  readonly id: number
  readonly submissionId: number
  readonly requestedBy: string
  readonly startedAt: string
  readonly finishedAt: string | null
  readonly outcome: VerificationOutcome | null
  readonly summary: VerificationSummary | null
}

/**
 * A verification runs in the process that took the request; one still unfinished after
 * this long belonged to a process that stopped, and is closed as an error.
 */
const ABANDONED_AFTER_MS = 3 * 60 * 60_000

/**
 * Starts a verification and returns its id at once; `done` settles when it is recorded
 * (it never rejects: failures are an `error` outcome). Refused (409) for a submission with
 * nothing archived to compare with.
 */
export async function requestVerification(
  ctx: AppContext,
  submissionId: number,
  options: { actor: string } & VerifyDeps,
): Promise<{ verificationId: number; done: Promise<VerificationRecord> }> {
  const submission = await ctx.store.db
    .selectFrom('submissions')
    .selectAll()
    .where('id', '=', submissionId)
    .executeTakeFirst()
  if (!submission) throw new BadRequestError(`no submission ${submissionId}`, 404, 'not_found')
  if (submission.archive !== 'archived' || !submission.image_ref?.includes('@sha256:')) {
    throw new BadRequestError(
      `submission ${submissionId} cannot be verified: there is no archived image to compare with (archive: ${submission.archive})`,
      409,
      'not_archived',
    )
  }

  const now = ctx.clock.now()
  await closeAbandoned(ctx, now)
  const row = await ctx.store.db
    .insertInto('verifications')
    .values({
      submission_id: submissionId,
      requested_by: options.actor,
      started_at: now.toISOString(),
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  const verificationId = Number(row.id)
  await appendTimeline(ctx.store.db, {
    submissionId,
    kind: 'note',
    message: `verification ${verificationId} requested by ${options.actor}: rebuilding commit ${submission.commit_sha.slice(0, 12)} without cache`,
    actor: options.actor,
    at: now,
  })

  const log = ctx.log.child({ part: 'verify', submissionId, verificationId })
  const done = verify(ctx, verificationId, submission, options, log)
  return { verificationId, done }
}

async function closeAbandoned(ctx: AppContext, now: Date): Promise<void> {
  const before = new Date(now.getTime() - ABANDONED_AFTER_MS).toISOString()
  await ctx.store.db
    .updateTable('verifications')
    .set({
      finished_at: now.toISOString(),
      outcome: 'error',
      summary_json: JSON.stringify({
        error: 'abandoned: the process running it stopped before it finished',
      }),
    })
    .where('finished_at', 'is', null)
    .where('started_at', '<', before)
    .execute()
}

export async function getVerification(
  ctx: AppContext,
  id: number,
): Promise<VerificationRecord | null> {
  const row = await ctx.store.db
    .selectFrom('verifications')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirst()
  return row ? toRecord(row) : null
}

export async function listVerifications(
  ctx: AppContext,
  submissionId: number,
): Promise<VerificationRecord[]> {
  const rows = await ctx.store.db
    .selectFrom('verifications')
    .selectAll()
    .where('submission_id', '=', submissionId)
    .orderBy('id')
    .execute()
  return rows.map(toRecord)
}

async function verify(
  ctx: AppContext,
  verificationId: number,
  submission: Submission,
  deps: { actor: string } & VerifyDeps,
  log: Logger,
): Promise<VerificationRecord> {
  const started = Date.now()
  let summary: VerificationSummary
  try {
    summary = await rebuildAndCompare(ctx, verificationId, submission, deps, log, started)
  } catch (err) {
    const message = err instanceof ProctorError || err instanceof Error ? err.message : String(err)
    log.warn({ err: message }, 'verification could not be completed')
    summary = emptySummary(submission, message, Date.now() - started)
  }
  const outcome: VerificationOutcome =
    summary.error !== null ? 'error' : summary.comparison?.identical ? 'identical' : 'different'

  const now = ctx.clock.now()
  await ctx.store.db
    .updateTable('verifications')
    .set({ finished_at: now.toISOString(), outcome, summary_json: JSON.stringify(summary) })
    .where('id', '=', verificationId)
    .execute()
  await appendTimeline(ctx.store.db, {
    submissionId: submission.id,
    kind: 'note',
    message: describeOutcome(verificationId, outcome, summary),
    actor: deps.actor,
    at: now,
  })
  log.info(
    { outcome, durationMs: summary.durationMs, differences: summary.comparison?.differenceCount },
    'verification finished',
  )
  return (await getVerification(ctx, verificationId)) as VerificationRecord
}

function emptySummary(s: Submission, error: string, durationMs: number): VerificationSummary {
  return {
    submissionId: s.id,
    commit: s.commit_sha,
    project: s.project_path,
    builder: s.builder ?? '',
    builderVersion: s.builder_version ?? '',
    archive: null,
    rebuild: null,
    recordedBaseImage: parseBuildInputs(s.build_inputs_json)?.baseImage ?? null,
    baseImageMatches: null,
    layerDigestsDiffer: null,
    comparison: null,
    error,
    durationMs,
  }
}

function describeOutcome(
  id: number,
  outcome: VerificationOutcome,
  summary: VerificationSummary,
): string {
  if (outcome === 'error')
    return `verification ${id} could not be completed: ${summary.error ?? ''}`
  const c = summary.comparison
  if (!c) return `verification ${id}: ${outcome}`
  if (c.identical) {
    return `verification ${id}: the rebuild is identical to the archive (${c.compared} paths: contents, modes, owners; layer digests differ as expected, ${c.mtimeOnly} files differ only in time)`
  }
  const named = c.differences
    .slice(0, 5)
    .map((d) => `${d.kind} ${d.path}`)
    .join(', ')
  return `verification ${id}: the rebuild differs from the archive in ${c.differenceCount} path${c.differenceCount === 1 ? '' : 's'} (${named}${c.differenceCount > 5 ? ', …' : ''})`
}

function toRecord(row: {
  id: number
  submission_id: number
  requested_by: string
  started_at: string
  finished_at: string | null
  outcome: VerificationOutcome | null
  summary_json: string | null
}): VerificationRecord {
  return {
    id: Number(row.id),
    submissionId: Number(row.submission_id),
    requestedBy: row.requested_by,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    outcome: row.outcome,
    summary: parseJson<VerificationSummary | null>(row.summary_json, null),
  }
}
