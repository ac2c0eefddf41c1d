import type { Clock } from '../domain/clock.ts'
import { expectSuccess, sendHttp } from '../outbox/http.ts'
import { recordAnnouncement } from '../outbox/record.ts'
import { DELIVERED, type DeliveryResult } from '../outbox/target.ts'
import type { Store } from '../store/database.ts'
import type { Submission } from '../store/schema.ts'
import type { AnnounceResult, Platform, PlatformUpdate } from './platform.ts'
import type { WebhookConfig } from './platform-config.ts'
import { submissionUrl, type UpdateContext } from './updates.ts'
import { signBody, WEBHOOK_HEADERS } from './webhook-signature.ts'

export interface WebhookDeps {
  readonly store: Store
  readonly clock: Clock
  readonly context: UpdateContext
}

/**
 * A platform reached by signed JSON POSTs, one outbox target per configured endpoint
 * (`webhook:<name>`), so a slow or broken receiver delays only its own messages.
 *
 * Announcing never refuses and never waits for a receiver: it writes an `announced` message
 * for every endpoint and returns. Every later change follows through the outbox.
 *
 * Each request (see WEBHOOK_HEADERS and docs/reporting.md for the body):
 *
 *   POST <url>
 *   content-type: application/json
 *   x-proctor-delivery: 1234
 *   x-proctor-timestamp: 1767225600
 *   x-proctor-event: submission.state
 *   x-proctor-signature: sha256=<hex HMAC-SHA256 of the raw body>
 *
 * 2xx and 3xx are success; 408, 429 and 5xx are retried; other 4xx stop that message.
 */
export class WebhookPlatform implements Platform {
  readonly kind = 'webhook' as const
  readonly targets: readonly string[]
  readonly #config: WebhookConfig
  readonly #deps: WebhookDeps

  constructor(config: WebhookConfig, deps: WebhookDeps) {
    this.#config = config
    this.#deps = deps
    this.targets = config.endpoints.map((e) => `webhook:${e.name}`)
  }

  async announce(submission: Submission): Promise<AnnounceResult> {
    await recordAnnouncement(this.#deps.store.db, this.targets, submission, this.#deps.clock.now())
    return { ok: true, platformSubmissionId: `proctor:${submission.id}` }
  }

  async update(
    target: string,
    update: PlatformUpdate,
    signal: AbortSignal,
  ): Promise<DeliveryResult> {
    const endpoint = this.#config.endpoints.find((e) => `webhook:${e.name}` === target)
    if (!endpoint) throw new Error(`no webhook endpoint for target ${target}`)

    const now = this.#deps.clock.now()
    const timestamp = Math.floor(now.getTime() / 1000)
    const type = `submission.${update.event}`
    const body = JSON.stringify(webhookBody(update, type, now, this.#deps.context))
    const response = await sendHttp({
      method: 'POST',
      url: endpoint.url,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'proctor',
        [WEBHOOK_HEADERS.delivery]: update.key,
        [WEBHOOK_HEADERS.timestamp]: String(timestamp),
        [WEBHOOK_HEADERS.event]: type,
        [WEBHOOK_HEADERS.signature]: signBody(endpoint.secret, body),
      },
      body,
      timeoutMs: this.#config.timeoutMs,
      signal,
    })
    expectSuccess(response, `webhook ${endpoint.name}`)
    return DELIVERED
  }
}

/** The JSON a receiver gets. `id` and `timestamp` repeat the headers inside the signature. */
export function webhookBody(
  update: PlatformUpdate,
  type: string,
  sentAt: Date,
  context: UpdateContext,
) {
  const s = update.submission
  return {
    id: update.key,
    type,
    timestamp: Math.floor(sentAt.getTime() / 1000),
    sentAt: sentAt.toISOString(),
    submission: {
      id: s.id,
      platformSubmissionId: s.platform_submission_id,
      challengeId: s.challenge_id,
      roundId: s.round_id,
      participant: update.participant?.username ?? null,
      team: update.participant?.team ?? null,
      forge: s.forge,
      project: s.project_path,
      tag: s.tag,
      commit: s.commit_sha,
      debug: s.debug === 1,
      url: submissionUrl(context.publicUrl, s.id),
    },
    change: {
      state: update.state,
      previousState: update.previousState,
      reasonCode: update.reasonCode,
      message: update.message,
      progress: update.progress,
      score: update.score,
      scoreSecondary: update.scoreSecondary,
      at: update.at,
    },
    meta: update.meta,
  }
}
