import type { SubmissionState } from '../domain/states.ts'
import type { DeliveryResult } from '../outbox/target.ts'
import type { Submission } from '../store/schema.ts'

export type PlatformKind = 'embedded' | 'crowdai' | 'webhook'

/**
 * Where participants see results. proctor announces each submission to it before charging
 * the quota (the platform may refuse: its own quota gate), then reports every change through
 * the outbox (`update`), in order, until the platform has it.
 *
 * Adapters (chosen by `platform.kind`): `embedded` (proctor's own store is the platform),
 * `crowdai` (the crowdAI/AIcrowd grader API), `webhook` (signed JSON to configured URLs).
 */
export interface Platform {
  readonly kind: PlatformKind
  /**
   * The outbox targets updates go through: none for embedded, `platform` for crowdAI,
   * `webhook:<name>` per webhook endpoint.
   */
  readonly targets: readonly string[]
  /**
   * Announces a new submission. Returns the platform's id for it, or a refusal with the
   * platform's message (the submission then fails `platform_refused`). Throws when the
   * platform cannot be reached: the intake job retries and the submission stays `received`.
   */
  announce(submission: Submission): Promise<AnnounceResult>
  /**
   * Delivers one update to `target`. Throws PermanentDeliveryError when the platform refuses
   * it for good, anything else when it is worth retrying. Called again with the same `key`
   * after a lost answer: the platform may drop a key it has seen.
   */
  update(target: string, update: PlatformUpdate, signal: AbortSignal): Promise<DeliveryResult>
}

export type AnnounceResult =
  | { ok: true; platformSubmissionId: string }
  | { ok: false; message: string }

/** One update: state, progress, score, message and metadata of a submission. */
export interface PlatformUpdate {
  /** The idempotency key: the outbox message id. */
  readonly key: string
  readonly event: 'announced' | 'state' | 'progress'
  /** The submission as it is now (for its ids, repository and challenge). */
  readonly submission: Submission
  readonly participant: PlatformParticipant | null
  /** The change, as it was when it happened. */
  readonly state: SubmissionState
  readonly previousState: SubmissionState | null
  readonly reasonCode: string | null
  readonly message: string
  readonly progress: number | null
  readonly score: number | null
  readonly scoreSecondary: number | null
  readonly at: string
  /** What else proctor knows: repository, tag, commit, stage, links (docs/reporting.md). */
  readonly meta: Readonly<Record<string, string | number | boolean | null>>
}

export interface PlatformParticipant {
  readonly username: string
  readonly team: string | null
  /** The participant's name on the external platform, when it differs. */
  readonly platformId: string | null
}
