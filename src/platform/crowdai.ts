import type { Logger } from 'pino'

import type { Clock } from '../domain/clock.ts'
import { errorMessage, ProctorError } from '../domain/errors.ts'
import { expectSuccess, responseMessage } from '../outbox/http.ts'
import { DELIVERED, PermanentDeliveryError, type DeliveryResult } from '../outbox/target.ts'
import type { Store } from '../store/database.ts'
import type { Submission } from '../store/schema.ts'
import {
  createdPlatformId,
  finishCreate,
  settleUnansweredCreates,
  startCreate,
} from './announcements.ts'
import { CrowdaiApi } from './crowdai-api.ts'
import type { AnnounceResult, Platform, PlatformUpdate } from './platform.ts'
import type { CrowdaiConfig } from './platform-config.ts'
import { platformUsername, submissionMeta, type UpdateContext } from './updates.ts'

export interface CrowdaiDeps {
  readonly store: Store
  readonly clock: Clock
  readonly log: Logger
  readonly context: UpdateContext
  /** Removes configured secrets from a message before it is stored or logged. */
  readonly redact: (text: string) => string
}

/**
 * The crowdAI/AIcrowd grader API as a platform (see crowdai-api.ts for the wire format).
 *
 * Announce = create (`grading_status: submitted`): the platform's quota gate. A 400 is a
 * refusal; anything else that is not a 202 is proctor's or the platform's trouble and
 * throws, so the intake job retries. The participant's platform key is looked up with the
 * lookup key on each announce and sent in the create only; it is never stored.
 *
 * Updates = PATCH with `grading_status` submitted (progress, message) | graded (score) |
 * failed (message), and the whole `meta` object with `meta_overwrite: true`: without it the
 * platform keeps the old value of every key it already has, so `proctor_state` would stay
 * at its first value forever.
 */
export class CrowdaiPlatform implements Platform {
  readonly kind = 'crowdai' as const
  readonly targets = ['platform'] as const
  readonly #api: CrowdaiApi
  readonly #deps: CrowdaiDeps

  constructor(config: CrowdaiConfig, deps: CrowdaiDeps) {
    this.#api = new CrowdaiApi(config)
    this.#deps = deps
  }

  async announce(submission: Submission): Promise<AnnounceResult> {
    const { store, clock } = this.#deps
    const log = this.#deps.log.child({ part: 'platform', submissionId: submission.id })
    const challengeId = submission.challenge_id
    if (!challengeId) {
      throw new ProctorError(
        'platform_config',
        `submission ${submission.id} has no challenge; it cannot be announced`,
      )
    }
    const challenge = this.#api.challenge(challengeId)

    // A create that succeeded before (the intake job was retried after it): reuse its id.
    const known = await createdPlatformId(store, submission.id)
    if (known) return { ok: true, platformSubmissionId: known }
    const unanswered = await settleUnansweredCreates(store, submission.id, clock.now())
    if (unanswered > 0) {
      log.warn(
        { unanswered },
        'an earlier create for this submission got no answer; creating again. The platform API cannot ' +
          'search, so it may hold a duplicate: look for meta.proctor_submission_id on the platform',
      )
    }

    const participant = await this.#participant(submission)
    const lookup = await this.#api.findParticipant(participant)
    if (!lookup.found) {
      return {
        ok: false,
        message: `the platform has no participant named ${participant} (${lookup.message}); register there with that username`,
      }
    }

    const body = {
      api_key: lookup.apiKey,
      challenge_client_name: challenge.clientName,
      grading_status: 'submitted',
      grading_message: 'received by proctor; waiting for the quota check',
      meta: submissionMeta(submission, this.#deps.context, { proctor_state: 'received' }),
      ...(submission.round_id && challenge.rounds[submission.round_id]
        ? { challenge_round_id: challenge.rounds[submission.round_id] }
        : {}),
      ...(submission.description ? { description_markdown: submission.description } : {}),
      ...(submission.debug ? { debug_submission: true } : {}),
    }
    const redact = (text: string) => this.#deps.redact(text.replaceAll(lookup.apiKey, '[redacted]'))

    const attempt = await startCreate(store, submission.id, 'crowdai', clock.now())
    let response
    try {
      response = await this.#api.create(challengeId, body)
    } catch (err) {
      const message = redact(errorMessage(err))
      await finishCreate(store, attempt, { state: 'uncertain', message }, clock.now())
      throw new ProctorError(
        'platform_unavailable',
        `announcing submission ${submission.id}: ${message}`,
        { cause: err },
      )
    }

    const said = redact(responseMessage(response))
    const id = (response.json as { submission_id?: unknown } | null)?.submission_id
    if (
      response.status >= 200 &&
      response.status < 300 &&
      (typeof id === 'number' || typeof id === 'string')
    ) {
      await finishCreate(
        store,
        attempt,
        { state: 'created', platformSubmissionId: String(id) },
        clock.now(),
      )
      log.info({ platformSubmissionId: String(id) }, 'announced to the platform')
      return { ok: true, platformSubmissionId: String(id) }
    }
    if (response.status === 400) {
      await finishCreate(store, attempt, { state: 'refused', message: said }, clock.now())
      return { ok: false, message: said || 'the platform refused it without a message' }
    }

    // A 5xx may come after the platform created the submission; 401, 408 and 429 never do.
    const uncertain = response.status >= 500 || response.status < 300
    await finishCreate(
      store,
      attempt,
      { state: uncertain ? 'uncertain' : 'failed', message: said },
      clock.now(),
    )
    if (response.status === 401 || response.status === 403) {
      throw new ProctorError(
        'platform_auth',
        `the platform refused the organizer key of challenge ${challengeId} (HTTP ${response.status}); ` +
          `fix platform.crowdai.challenges.${challengeId}.organizerKey`,
      )
    }
    throw new ProctorError(
      'platform_unavailable',
      `announcing submission ${submission.id}: HTTP ${response.status}${said ? `: ${said}` : ''}`,
    )
  }

  async update(
    _target: string,
    update: PlatformUpdate,
    signal: AbortSignal,
  ): Promise<DeliveryResult> {
    const s = update.submission
    const platformId = s.platform_submission_id
    if (!platformId || !s.challenge_id) {
      throw new PermanentDeliveryError(
        `submission ${s.id} was never announced to the platform; nothing to update`,
      )
    }
    let challengeKnown = true
    try {
      this.#api.challenge(s.challenge_id)
    } catch {
      challengeKnown = false
    }
    if (!challengeKnown) {
      throw new PermanentDeliveryError(
        `challenge ${s.challenge_id} has no entry under platform.crowdai.challenges; add it, restart, then retry`,
      )
    }

    const body = { ...gradingFields(update), meta: update.meta, meta_overwrite: true }
    const response = await this.#api.update(s.challenge_id, platformId, body, signal)
    if (response.status === 401 || response.status === 403) {
      throw new PermanentDeliveryError(
        `the platform refused the organizer key of challenge ${s.challenge_id} (HTTP ${response.status}); ` +
          `fix platform.crowdai.challenges.${s.challenge_id}.organizerKey, restart, then retry`,
        { status: response.status },
      )
    }
    expectSuccess(response, `updating platform submission ${platformId}`)
    return DELIVERED
  }

  async #participant(submission: Submission): Promise<string> {
    const row =
      submission.participant_id === null
        ? undefined
        : await this.#deps.store.db
            .selectFrom('participants')
            .select(['username', 'team', 'platform_id'])
            .where('id', '=', submission.participant_id)
            .executeTakeFirst()
    if (!row) {
      throw new ProctorError(
        'platform_config',
        `submission ${submission.id} has no participant; it cannot be announced`,
      )
    }
    return platformUsername({ username: row.username, team: row.team, platformId: row.platform_id })
  }
}

/**
 * A state as the platform knows it: `graded` needs a score, `failed` a message, and progress
 * is `submitted` with a changing message.
 */
export function gradingFields(update: PlatformUpdate): Record<string, unknown> {
  switch (update.state) {
    case 'scored':
      return {
        grading_status: 'graded',
        score: update.score,
        score_secondary: update.scoreSecondary,
        grading_message: update.message,
      }
    case 'failed':
    case 'cancelled':
    case 'rejected':
      return {
        grading_status: 'failed',
        grading_message: update.message || `submission ${update.state}`,
      }
    default:
      return { grading_status: 'submitted', grading_message: update.message }
  }
}
