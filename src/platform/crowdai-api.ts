import { ProctorError } from '../domain/errors.ts'
import { responseMessage, sendHttp, type HttpResponse } from '../outbox/http.ts'
import type { CrowdaiConfig } from './platform-config.ts'

/**
 * The crowdAI/AIcrowd grader API, as the platform speaks it (docs/reporting.md,
 * /work/shared/reference/crowdai-api.md):
 *
 * - `Authorization: Token token=<key>`; a bad or missing key is 401, every other failure 400
 *   with a JSON `message`.
 * - `GET /api/participants/:username` (admin key) → `{ id, name, api_key, … }` or 404.
 * - `POST /api/external_graders` (organizer key) → 202 `{ submission_id, message,
 *   submissions_remaining, reset_dttm }`; the create is the platform's quota gate.
 * - `PATCH /api/external_graders/:id` (organizer key) → 202 `{ …, reset_date }`.
 *
 * Each challenge has its own organizer key, chosen by proctor's challenge id and nothing
 * else: a challenge without an entry gets no key at all, never another challenge's.
 */
export class CrowdaiApi {
  readonly #config: CrowdaiConfig

  constructor(config: CrowdaiConfig) {
    this.#config = config
  }

  /** The platform's name for a challenge and the key to use for it. Throws when unset. */
  challenge(challengeId: string): {
    clientName: string
    organizerKey: string
    rounds: Record<string, string>
  } {
    const entry = Object.hasOwn(this.#config.challenges, challengeId)
      ? this.#config.challenges[challengeId]
      : undefined
    if (!entry) {
      throw new ProctorError(
        'platform_config',
        `challenge ${challengeId} has no entry under platform.crowdai.challenges; ` +
          'add its clientName and organizerKey, then restart proctor',
      )
    }
    return entry
  }

  /** Looks a participant up by username with the lookup (admin) key. */
  async findParticipant(
    username: string,
  ): Promise<{ found: true; apiKey: string } | { found: false; message: string }> {
    const response = await this.#send(
      'GET',
      `/api/participants/${encodeURIComponent(username)}`,
      this.#config.lookupKey,
    )
    if (response.status === 404)
      return { found: false, message: responseMessage(response) || 'not found' }
    if (response.status === 401 || response.status === 403) {
      throw new ProctorError(
        'platform_auth',
        `the platform refused the lookup key (HTTP ${response.status}); set platform.crowdai.lookupKey to an admin key`,
      )
    }
    if (response.status !== 200) {
      throw new ProctorError(
        'platform_unavailable',
        `looking up participant ${username} on the platform: HTTP ${response.status}: ${responseMessage(response)}`,
      )
    }
    const apiKey = (response.json as { api_key?: unknown } | null)?.api_key
    if (typeof apiKey !== 'string' || apiKey === '') {
      throw new ProctorError(
        'platform_unavailable',
        `the platform's answer for participant ${username} has no api_key`,
      )
    }
    return { found: true, apiKey }
  }

  create(
    challengeId: string,
    body: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<HttpResponse> {
    const { organizerKey } = this.challenge(challengeId)
    return this.#send('POST', '/api/external_graders', organizerKey, body, signal)
  }

  update(
    challengeId: string,
    platformSubmissionId: string,
    body: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<HttpResponse> {
    const { organizerKey } = this.challenge(challengeId)
    const path = `/api/external_graders/${encodeURIComponent(platformSubmissionId)}`
    return this.#send('PATCH', path, organizerKey, body, signal)
  }

  #send(
    method: 'GET' | 'POST' | 'PATCH',
    path: string,
    key: string,
    body?: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<HttpResponse> {
    return sendHttp({
      method,
      url: `${this.#config.baseUrl.replace(/\/+$/, '')}${path}`,
      headers: {
        authorization: `Token token=${key}`,
        accept: 'application/json',
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
      timeoutMs: this.#config.timeoutMs,
      ...(signal ? { signal } : {}),
    })
  }
}
