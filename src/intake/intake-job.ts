import type { Transaction } from 'kysely'
import type { Logger } from 'pino'

import type { AppContext } from '../app/context.ts'
import type { Challenge } from '../config/challenge.ts'
import type { ForgeConfig } from '../config/proctor-config.ts'
import { errorMessage, InfrastructureError } from '../domain/errors.ts'
import type { ReasonCode } from '../domain/reasons.ts'
import { findParticipantByForgeUser, findParticipantsByUsernames } from '../participants/directory.ts'
import type { ClaimedJob } from '../queue/job-queue.ts'
import type { Database, Participant, Submission } from '../store/schema.ts'
import { moveSubmission, noteSubmission } from '../submissions/transitions.ts'
import { appendTimeline } from '../submissions/timeline.ts'
import { chargeAndQueue } from './charge.ts'
import { matchesTagPattern, nameMismatch, openWindow, type OpenWindow } from './checks.ts'
import {
  createSubmission,
  findSubmissionByIdentity,
  markEventFailed,
  markEventProcessed,
  toTagPushRow,
  type TagPushRow,
} from './intake-store.ts'
import { readManifest, type Manifest, type ManifestResult } from './manifest.ts'
import { Mirror } from './mirror.ts'

const ACTOR = 'proctor'

/**
 * The intake job: one stored tag push becomes a submission that is queued, rejected or
 * failed. Steps: resolve the commit in the project's mirror → find or create the submission
 * (forge, project, tag, commit) → check crowdai.json, challenge, round, repository name,
 * tag pattern, participant, debug → announce to the platform → in one transaction under the
 * job's lease: charge the quota, snapshot the challenge, add evaluation #1 and its job.
 *
 * Every path that ends the job marks the event processed and completes the job in the same
 * transaction as its last write, so a crash anywhere re-runs the job from a consistent
 * point. A re-run finds the submission it created (same event) and goes on from its state; a
 * terminal submission is never touched again, which is why an over-quota submission stays
 * failed. Throws InfrastructureError for trouble worth retrying (git, platform unreachable),
 * StaleLeaseError when the lease is lost.
 */
export async function runIntakeJob(ctx: AppContext, job: ClaimedJob): Promise<void> {
  const log = ctx.log.child({ jobId: job.id, attempt: job.attempt, eventId: job.eventId })
  const row = job.eventId === null
    ? undefined
    : await ctx.store.db.selectFrom('hook_events').selectAll().where('id', '=', job.eventId).executeTakeFirst()
  if (!row) {
    await ctx.queue.withLease(job, (trx) => ctx.queue.fail(trx, job, `hook event ${job.eventId} does not exist`))
    return
  }
  if (row.status !== 'pending') {
    await ctx.queue.withLease(job, (trx) => ctx.queue.complete(trx, job))
    return
  }

  const event = toTagPushRow(row)
  const forge = ctx.config.forges.find((f) => f.id === row.forge)
  if (!event || !forge) {
    const reason = !forge
      ? `forge ${row.forge} is no longer configured; the event cannot be fetched`
      : 'the event lacks the fields of a tag push'
    await ctx.queue.withLease(job, async (trx) => {
      await markEventFailed(trx, Number(row.id), reason, ctx.clock)
      await ctx.queue.fail(trx, job, reason)
    })
    log.warn({ reason }, 'intake event cannot be processed')
    return
  }

  await new IntakeRun(ctx, job, event, forge, log).run()
}

class IntakeRun {
  readonly #ctx: AppContext
  readonly #job: ClaimedJob
  readonly #event: TagPushRow
  readonly #mirror: Mirror
  readonly #log: Logger

  constructor(ctx: AppContext, job: ClaimedJob, event: TagPushRow, forge: ForgeConfig, log: Logger) {
    this.#ctx = ctx
    this.#job = job
    this.#event = event
    this.#mirror = new Mirror(ctx.config, forge, event.projectPath)
    this.#log = log
  }

  async run(): Promise<void> {
    const started = Date.now()
    const commit = await this.#resolveCommit()
    const identityCommit = commit ?? this.#event.checkoutSha

    const existing = await findSubmissionByIdentity(this.#ctx.store.db, this.#event, identityCommit)
    if (existing && Number(existing.event_id) !== this.#event.id) return this.#linkToExisting(existing)

    const manifest: ManifestResult | null = commit
      ? await readManifest(this.#mirror, commit, this.#event.tag)
      : null
    const { submission, created } = await this.#ctx.queue.withLease(this.#job, (trx) =>
      createSubmission(trx, this.#event, identityCommit, manifest?.ok ? manifest.manifest : null, this.#ctx.clock),
    )
    if (!created && Number(submission.event_id) !== this.#event.id) return this.#linkToExisting(submission)
    if (submission.state !== 'received') return this.#finish(submission.id)

    const log = this.#log.child({ submissionId: submission.id })
    if (!commit || !manifest) {
      return this.#reject(
        submission.id,
        'commit_unreachable',
        `commit ${this.#event.checkoutSha.slice(0, 12)} of tag ${this.#event.tag} could not be fetched from the forge (was the tag moved or deleted right after the push?); push the tag again`,
      )
    }
    if (!manifest.ok) return this.#reject(submission.id, manifest.code, manifest.message)

    const verdict = await this.#check(submission, manifest.manifest)
    if (!verdict.ok) return this.#reject(submission.id, verdict.code, verdict.message, verdict.challengeId)

    const current = await this.#recordPeople(submission, verdict)
    if (!(await this.#announce(current))) return

    const result = await chargeAndQueue(this.#ctx, this.#job, current, verdict.challenge, verdict.window)
    log.info({ outcome: result, ms: Date.now() - started }, 'intake done')
  }

  /**
   * The commit the event names: the payload's checkout sha peeled with git (an annotated
   * tag's object becomes its commit). Fetches only when the mirror lacks it. Null when the
   * forge no longer has it (the tag moved or was deleted before we fetched).
   */
  async #resolveCommit(): Promise<string | null> {
    const sha = this.#event.checkoutSha
    const here = await this.#mirror.peel(sha)
    if (here) return here
    await this.#mirror.fetch()
    const fetched = await this.#mirror.peel(sha)
    if (fetched) return fetched
    return (await this.#mirror.fetchSha(sha)) ? this.#mirror.peel(sha) : null
  }

  async #check(submission: Submission, manifest: Manifest): Promise<Verdict> {
    const { challenges, clock } = this.#ctx
    const challenge = challenges.find(manifest.challengeId)
    if (!challenge) {
      return reject(
        'challenge_unknown',
        `crowdai.json names challenge "${manifest.challengeId}", which does not exist here`,
      )
    }
    const id = challenge.definition.id
    const window = openWindow(challenge, clock.now())
    if (!window.open) return reject('challenge_closed', window.message, id)
    const mismatch = nameMismatch(submission.project_path, id)
    if (mismatch) return reject('name_mismatch', mismatch, id)
    if (!matchesTagPattern(this.#event.tag, challenge.definition.tagPattern)) {
      return reject(
        'tag_ignored',
        `tag ${this.#event.tag} does not match challenge ${id}'s tag pattern "${challenge.definition.tagPattern}"`,
        id,
      )
    }

    const pusher = await findParticipantByForgeUser(this.#ctx.store.db, this.#event.forge, this.#event.pusherForgeId)
    if (!pusher) {
      const who = this.#event.pusherUsername ?? `user ${this.#event.pusherForgeId}`
      return reject(
        'participant_unknown',
        `${this.#event.forge} account ${who} (id ${this.#event.pusherForgeId}) is not registered for this challenge`,
        id,
      )
    }
    if (manifest.debug && !challenge.definition.allowDebug) {
      return reject('debug_not_allowed', `challenge ${id} does not take debug submissions ("debug": true)`, id)
    }
    return { ok: true, challenge, window, pusher, manifest }
  }

  /**
   * Records the challenge, round, participant, charged subject and authors. Authors are
   * participant usernames; names the directory does not know are dropped, each with a note.
   * Runs once: a re-run finds `participant_id` set and skips it.
   */
  async #recordPeople(submission: Submission, verdict: Passed): Promise<Submission> {
    if (submission.participant_id !== null) return submission
    const { pusher, manifest, challenge, window } = verdict
    const known = await findParticipantsByUsernames(this.#ctx.store.db, manifest.authors)
    const byLower = new Map(known.map((p) => [p.username.toLowerCase(), p.username]))
    const authors = [...new Set(manifest.authors.map((a) => byLower.get(a.toLowerCase())).filter((a) => a !== undefined))]
    const dropped = manifest.authors.filter((a) => !byLower.has(a.toLowerCase()))
    const now = this.#ctx.clock.now()

    return this.#ctx.queue.withLease(this.#job, async (trx) => {
      await trx
        .updateTable('submissions')
        .set({
          challenge_id: challenge.definition.id,
          round_id: window.roundId,
          participant_id: Number(pusher.id),
          quota_subject: quotaSubject(pusher),
          authors_json: JSON.stringify(authors),
          updated_at: now.toISOString(),
        })
        .where('id', '=', submission.id)
        .execute()
      for (const name of dropped) {
        await appendTimeline(trx, {
          submissionId: submission.id,
          kind: 'note',
          message: `author "${name}" in crowdai.json is not a registered participant; left out of the authors`,
          actor: ACTOR,
          at: now,
        })
      }
      return trx.selectFrom('submissions').selectAll().where('id', '=', submission.id).executeTakeFirstOrThrow()
    })
  }

  /** Announces once. False when the platform refused (the submission is failed and done). */
  async #announce(submission: Submission): Promise<boolean> {
    if (submission.platform_submission_id !== null) return true
    let answer
    try {
      answer = await this.#ctx.platform.announce(submission)
    } catch (err) {
      const message = `waiting for the platform to answer (attempt ${this.#job.attempt})`
      await this.#ctx.queue.withLease(this.#job, (trx) =>
        noteSubmission(trx, submission.id, { message, actor: ACTOR, at: this.#ctx.clock.now(), kind: 'progress' }),
      )
      throw new InfrastructureError(
        `submission ${submission.id}: the platform did not answer the announcement: ${errorMessage(err)}`,
        { cause: err },
      )
    }

    if (!answer.ok) {
      await this.#ctx.queue.withLease(this.#job, async (trx) => {
        await moveSubmission(trx, submission.id, {
          to: 'failed',
          from: ['received'],
          reasonCode: 'platform_refused',
          message: `the platform refused the submission: ${answer.message}`,
          actor: 'platform',
          at: this.#ctx.clock.now(),
        })
        await this.#complete(trx, submission.id)
      })
      return false
    }
    await this.#ctx.queue.withLease(this.#job, (trx) =>
      trx
        .updateTable('submissions')
        .set({ platform_submission_id: answer.platformSubmissionId })
        .where('id', '=', submission.id)
        .execute(),
    )
    return true
  }

  async #reject(submissionId: number, code: ReasonCode, message: string, challengeId?: string): Promise<void> {
    await this.#ctx.queue.withLease(this.#job, async (trx) => {
      await moveSubmission(trx, submissionId, {
        to: 'rejected',
        from: ['received'],
        reasonCode: code,
        message,
        actor: ACTOR,
        at: this.#ctx.clock.now(),
        ...(challengeId ? { set: { challenge_id: challengeId } } : {}),
      })
      await this.#complete(trx, submissionId)
    })
    this.#log.info({ submissionId, reason: code }, 'submission rejected')
  }

  /** The same tag pushed again on the same commit: the same submission. Link and stop. */
  async #linkToExisting(existing: Submission): Promise<void> {
    await this.#ctx.queue.withLease(this.#job, async (trx) => {
      await appendTimeline(trx, {
        submissionId: existing.id,
        kind: 'note',
        message: `tag ${this.#event.tag} was pushed again on the same commit (event ${this.#event.id}); this is the same submission`,
        actor: ACTOR,
        at: this.#ctx.clock.now(),
      })
      await this.#complete(trx, existing.id)
    })
  }

  async #finish(submissionId: number): Promise<void> {
    await this.#ctx.queue.withLease(this.#job, (trx) => this.#complete(trx, submissionId))
  }

  async #complete(trx: Transaction<Database>, submissionId: number): Promise<void> {
    await markEventProcessed(trx, this.#event.id, submissionId, this.#ctx.clock)
    await this.#ctx.queue.complete(trx, this.#job)
  }
}

interface Passed {
  ok: true
  challenge: Challenge
  window: Extract<OpenWindow, { open: true }>
  pusher: Participant
  manifest: Manifest
}

type Verdict = Passed | { ok: false; code: ReasonCode; message: string; challengeId?: string }

function reject(code: ReasonCode, message: string, challengeId?: string): Verdict {
  return { ok: false, code, message, ...(challengeId ? { challengeId } : {}) }
}

/** Who is charged: the participant's team when they have one, else the participant. */
export function quotaSubject(participant: Pick<Participant, 'username' | 'team'>): string {
  return participant.team ? `team:${participant.team}` : participant.username
}

/**
 * For the worker, when an intake job has used its last attempt: the event is marked failed
 * and a submission still `received` fails `infrastructure` (nothing was charged), so no
 * submission waits forever. Pass the transaction that fails the job.
 */
export async function abandonIntake(
  ctx: AppContext,
  trx: Transaction<Database>,
  eventId: number,
  error: string,
): Promise<void> {
  await markEventFailed(trx, eventId, error, ctx.clock)
  const event = await trx.selectFrom('hook_events').select('submission_id').where('id', '=', eventId).executeTakeFirst()
  const submissionId = event?.submission_id
  if (submissionId === null || submissionId === undefined) return
  const submission = await trx.selectFrom('submissions').select('state').where('id', '=', submissionId).executeTakeFirst()
  if (submission?.state !== 'received') return
  await moveSubmission(trx, submissionId, {
    to: 'failed',
    from: ['received'],
    reasonCode: 'infrastructure',
    message: `proctor could not take the submission in after several attempts: ${error}`,
    actor: ACTOR,
    at: ctx.clock.now(),
  })
}
