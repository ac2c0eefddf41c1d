import type { Transaction } from 'kysely'
import type { Logger } from 'pino'

import type { AppContext } from '../app/context.ts'
import type { Challenge } from '../config/challenge.ts'
import type { ForgeConfig } from '../config/proctor-config.ts'
import { errorMessage, InfrastructureError } from '../domain/errors.ts'
import type { ReasonCode } from '../domain/reasons.ts'
import {
  findParticipantByForgeUser,
  findParticipantsByUsernames,
} from '../participants/directory.ts'
import type { ClaimedJob } from '../queue/job-queue.ts'
import type { Database, Participant, Submission } from '../store/schema.ts'
import { moveSubmission, noteSubmission } from '../submissions/transitions.ts'
import { appendTimeline } from '../submissions/timeline.ts'
import { chargeAndQueue } from './charge.ts'
import { withLeaseGrouped } from './lease.ts'
import { matchesTagPattern, nameMismatch, openWindow, type OpenWindow } from './checks.ts'
import {
  createSubmission,
  findSubmissionByIdentity,
  markEventFailed,
  markEventProcessed,
  toTagPushRow,
  type AcceptedFields,
  type TagPushRow,
} from './intake-store.ts'
import { inspectCommit, type CommitInspection, type Manifest } from './manifest.ts'
import { Mirror } from './mirror.ts'

const ACTOR = 'proctor'

/**
 * The intake job: one stored tag push becomes a submission that is queued, rejected or
 * failed. Steps: peel the commit and read crowdai.json in the project's mirror (fetched only
 * when it lacks the commit) → a submission of the same (forge, project, tag, commit) from
 * another event means the tag was pushed again: link and stop → check crowdai.json,
 * challenge, round, repository name, tag pattern, participant, debug → create the submission
 * `received` (and, if a check failed, `rejected` in the same transaction) → announce to the
 * platform → in one transaction under the job's lease: charge the quota, snapshot the
 * challenge, add evaluation #1 and its job. Two to three commits per submission.
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
  const row =
    job.eventId === null
      ? undefined
      : await ctx.store.db
          .selectFrom('hook_events')
          .selectAll()
          .where('id', '=', job.eventId)
          .executeTakeFirst()
  if (!row) {
    await withLeaseGrouped(ctx, job, (trx) =>
      ctx.queue.fail(trx, job, `hook event ${job.eventId} does not exist`),
    )
    return
  }
  if (row.status !== 'pending') {
    await withLeaseGrouped(ctx, job, (trx) => ctx.queue.complete(trx, job))
    return
  }

  const event = toTagPushRow(row)
  const forge = ctx.config.forges.find((f) => f.id === row.forge)
  if (!event || !forge) {
    const reason = !forge
      ? `forge ${row.forge} is no longer configured; the event cannot be fetched`
      : 'the event lacks the fields of a tag push'
    await withLeaseGrouped(ctx, job, async (trx) => {
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

  constructor(
    ctx: AppContext,
    job: ClaimedJob,
    event: TagPushRow,
    forge: ForgeConfig,
    log: Logger,
  ) {
    this.#ctx = ctx
    this.#job = job
    this.#event = event
    this.#mirror = new Mirror(ctx.config, forge, event.projectPath)
    this.#log = log
  }

  async run(): Promise<void> {
    const started = Date.now()
    const inspection = await this.#inspect()
    const commit = inspection.found ? inspection.commit : this.#event.checkoutSha

    const existing = await findSubmissionByIdentity(this.#ctx.store.db, this.#event, commit)
    if (existing && Number(existing.event_id) !== this.#event.id) {
      return this.#linkToExisting(existing)
    }

    // Decide before writing anything, so a rejection is one transaction and an accepted
    // submission is created with its challenge, participant and authors in one go.
    const verdict: Verdict = !inspection.found
      ? reject(
          'commit_unreachable',
          `commit ${this.#event.checkoutSha.slice(0, 12)} of tag ${this.#event.tag} could not be fetched from the forge (was the tag moved or deleted right after the push?); push the tag again`,
        )
      : !inspection.manifest.ok
        ? reject(inspection.manifest.code, inspection.manifest.message)
        : await this.#check(inspection.manifest.manifest)
    const manifest =
      inspection.found && inspection.manifest.ok ? inspection.manifest.manifest : null

    const outcome = await withLeaseGrouped(this.#ctx, this.#job, async (trx) => {
      const made = await createSubmission(
        trx,
        this.#event,
        commit,
        manifest,
        this.#ctx.clock,
        verdict.ok ? accepted(verdict) : undefined,
      )
      if (!made.created) return { ...made, rejected: false }
      if (!verdict.ok) {
        await this.#rejectIn(trx, made.submission.id, verdict)
        return { ...made, rejected: true }
      }
      await this.#noteDroppedAuthors(trx, made.submission.id, verdict.droppedAuthors)
      return { ...made, rejected: false }
    })
    const submission = outcome.submission
    if (outcome.rejected) {
      const code = verdict.ok ? null : verdict.code
      this.#log.info({ submissionId: submission.id, reason: code }, 'submission rejected')
      return
    }
    if (!outcome.created && Number(submission.event_id) !== this.#event.id) {
      return this.#linkToExisting(submission)
    }
    if (submission.state !== 'received') return this.#finish(submission.id)

    // A re-run of this job (after a crash or a retry) finds its own submission still
    // received: the verdict was computed again above; go on from it.
    if (!verdict.ok) return this.#reject(submission.id, verdict)
    const platformId = await this.#announce(submission)
    if (platformId === null) return

    const result = await chargeAndQueue(
      this.#ctx,
      this.#job,
      submission,
      verdict.challenge,
      verdict.window,
      platformId,
    )
    this.#log.info(
      { submissionId: submission.id, outcome: result, ms: Date.now() - started },
      'intake done',
    )
  }

  /**
   * The commit the event names and crowdai.json at it: the payload's checkout sha peeled
   * with git (an annotated tag's object becomes its commit). Fetches only when the mirror
   * lacks it; asks the forge for the bare sha when a fetch of the refs does not bring it
   * (the tag was moved or deleted before we fetched). Not found when the forge lacks it too.
   */
  async #inspect(): Promise<CommitInspection> {
    const { checkoutSha, tag } = this.#event
    const here = await inspectCommit(this.#mirror, checkoutSha, tag)
    if (here.found) return here
    await this.#mirror.fetch()
    const fetched = await inspectCommit(this.#mirror, checkoutSha, tag)
    if (fetched.found) return fetched
    return (await this.#mirror.fetchSha(checkoutSha))
      ? inspectCommit(this.#mirror, checkoutSha, tag)
      : { found: false }
  }

  async #check(manifest: Manifest): Promise<Verdict> {
    const { challenges, clock, store } = this.#ctx
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
    const mismatch = nameMismatch(this.#event.projectPath, id)
    if (mismatch) return reject('name_mismatch', mismatch, id)
    if (!matchesTagPattern(this.#event.tag, challenge.definition.tagPattern)) {
      return reject(
        'tag_ignored',
        `tag ${this.#event.tag} does not match challenge ${id}'s tag pattern "${challenge.definition.tagPattern}"`,
        id,
      )
    }

    const pusher = await findParticipantByForgeUser(
      store.db,
      this.#event.forge,
      this.#event.pusherForgeId,
    )
    if (!pusher) {
      const who = this.#event.pusherUsername ?? `user ${this.#event.pusherForgeId}`
      return reject(
        'participant_unknown',
        `${this.#event.forge} account ${who} (id ${this.#event.pusherForgeId}) is not registered for this challenge`,
        id,
      )
    }
    if (manifest.debug && !challenge.definition.allowDebug) {
      return reject(
        'debug_not_allowed',
        `challenge ${id} does not take debug submissions ("debug": true)`,
        id,
      )
    }

    // Authors are participant usernames, matched ignoring case; unknown names are dropped.
    const known = await findParticipantsByUsernames(store.db, manifest.authors)
    const byLower = new Map(known.map((p) => [p.username.toLowerCase(), p.username]))
    const authors = [
      ...new Set(manifest.authors.flatMap((a) => byLower.get(a.toLowerCase()) ?? [])),
    ]
    const droppedAuthors = manifest.authors.filter((a) => !byLower.has(a.toLowerCase()))
    return { ok: true, challenge, window, pusher, manifest, authors, droppedAuthors }
  }

  async #noteDroppedAuthors(
    trx: Transaction<Database>,
    submissionId: number,
    dropped: readonly string[],
  ): Promise<void> {
    const at = this.#ctx.clock.now()
    for (const name of dropped) {
      await appendTimeline(trx, {
        submissionId,
        kind: 'note',
        message: `author "${name}" in crowdai.json is not a registered participant; left out of the authors`,
        actor: ACTOR,
        at,
      })
    }
  }

  /**
   * Announces once: returns the platform's id, or null when the platform refused (the
   * submission is failed and the job done). A platform that cannot be reached throws
   * InfrastructureError after recording that the submission waits for it.
   */
  async #announce(submission: Submission): Promise<string | null> {
    if (submission.platform_submission_id !== null) return submission.platform_submission_id
    let answer
    try {
      answer = await this.#ctx.platform.announce(submission)
    } catch (err) {
      const message = `waiting for the platform to answer (attempt ${this.#job.attempt})`
      await withLeaseGrouped(this.#ctx, this.#job, (trx) =>
        noteSubmission(trx, submission.id, {
          message,
          actor: ACTOR,
          at: this.#ctx.clock.now(),
          kind: 'progress',
        }),
      )
      throw new InfrastructureError(
        `submission ${submission.id}: the platform did not answer the announcement: ${errorMessage(err)}`,
        { cause: err },
      )
    }
    if (answer.ok) return answer.platformSubmissionId

    await withLeaseGrouped(this.#ctx, this.#job, async (trx) => {
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
    return null
  }

  async #reject(submissionId: number, verdict: Rejected): Promise<void> {
    await withLeaseGrouped(this.#ctx, this.#job, (trx) =>
      this.#rejectIn(trx, submissionId, verdict),
    )
    this.#log.info({ submissionId, reason: verdict.code }, 'submission rejected')
  }

  async #rejectIn(
    trx: Transaction<Database>,
    submissionId: number,
    verdict: Rejected,
  ): Promise<void> {
    await moveSubmission(trx, submissionId, {
      to: 'rejected',
      from: ['received'],
      reasonCode: verdict.code,
      message: verdict.message,
      actor: ACTOR,
      at: this.#ctx.clock.now(),
      ...(verdict.challengeId ? { set: { challenge_id: verdict.challengeId } } : {}),
    })
    await this.#complete(trx, submissionId)
  }

  /** The same tag pushed again on the same commit: the same submission. Link and stop. */
  async #linkToExisting(existing: Submission): Promise<void> {
    await withLeaseGrouped(this.#ctx, this.#job, async (trx) => {
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
    await withLeaseGrouped(this.#ctx, this.#job, (trx) => this.#complete(trx, submissionId))
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
  /** Canonical usernames of the authors the directory knows; the rest are dropped. */
  authors: readonly string[]
  droppedAuthors: readonly string[]
}

interface Rejected {
  ok: false
  code: ReasonCode
  message: string
  challengeId?: string
}

type Verdict = Passed | Rejected

function reject(code: ReasonCode, message: string, challengeId?: string): Rejected {
  return { ok: false, code, message, ...(challengeId ? { challengeId } : {}) }
}

function accepted(verdict: Passed): AcceptedFields {
  return {
    challengeId: verdict.challenge.definition.id,
    roundId: verdict.window.roundId,
    participantId: Number(verdict.pusher.id),
    quotaSubject: quotaSubject(verdict.pusher),
    authors: verdict.authors,
  }
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
  const event = await trx
    .selectFrom('hook_events')
    .select('submission_id')
    .where('id', '=', eventId)
    .executeTakeFirst()
  const submissionId = event?.submission_id
  if (submissionId === null || submissionId === undefined) return
  const submission = await trx
    .selectFrom('submissions')
    .select('state')
    .where('id', '=', submissionId)
    .executeTakeFirst()
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
