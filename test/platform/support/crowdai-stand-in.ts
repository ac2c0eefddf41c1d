import {
  sendJson,
  startStandIn,
  type ReceivedRequest,
  type StandIn,
} from '../../outbox/support/reporting.ts'

/**
 * A crowdAI/AIcrowd grader API as /work/shared/reference/crowdai-api.md describes it:
 * `Token token=<key>` auth (401 otherwise), every other failure a 400 with `message`,
 * participants looked up by the admin key, creates that are the quota gate, PATCHes that
 * keep a history and merge `meta` (replace with `meta_overwrite`, else add new keys only).
 *
 * Like the real platform, any organizer key may touch any submission: the stand-in records
 * which key each request carried, so tests can check proctor never crosses challenges.
 */
export interface PlatformSubmission {
  id: number
  participant: string
  challenge: string
  meta: Record<string, unknown>
  history: { status: string; score: unknown; message: unknown }[]
}

export interface CrowdaiStandIn {
  readonly standIn: StandIn
  readonly submissions: Map<number, PlatformSubmission>
  /** The key each request carried, with what it was for. */
  readonly keyLog: { method: string; path: string; key: string | null; challenge: string | null }[]
  /** Slots left per participant (default: plenty). */
  readonly slots: Map<string, number>
  /** The next create is applied but answered only after this many ms. */
  hangNextCreateMs: number
}

export async function startCrowdaiStandIn(options: {
  adminKey: string
  organizerKeys: Record<string, string>
  participants: Record<string, string>
}): Promise<CrowdaiStandIn> {
  const submissions = new Map<number, PlatformSubmission>()
  const keyLog: CrowdaiStandIn['keyLog'] = []
  const slots = new Map<string, number>()
  const validKeys = new Set([options.adminKey, ...Object.values(options.organizerKeys)])
  let nextId = 5000

  const state = { submissions, keyLog, slots, hangNextCreateMs: 0 }

  const standIn = await startStandIn(async (request, response) => {
    const key = tokenOf(request)
    const params = (request.json ?? {}) as Record<string, unknown>
    const challengeOf = (): string | null => {
      if (request.method === 'POST')
        return typeof params.challenge_client_name === 'string'
          ? params.challenge_client_name
          : null
      const id = Number(request.path.split('/').at(-1))
      return submissions.get(id)?.challenge ?? null
    }
    keyLog.push({ method: request.method, path: request.path, key, challenge: challengeOf() })
    if (!key || !validKeys.has(key)) {
      sendJson(response, 401, { message: 'HTTP Token: Access denied.' })
      return
    }

    if (request.method === 'GET' && request.path.startsWith('/api/participants/')) {
      if (key !== options.adminKey)
        return sendJson(response, 401, { message: 'HTTP Token: Access denied.' })
      const name = decodeURIComponent(request.path.slice('/api/participants/'.length)).toLowerCase()
      const apiKey = options.participants[name]
      if (!apiKey)
        return sendJson(response, 404, {
          message: 'No participant could be found for this username',
        })
      return sendJson(response, 200, {
        id: 1,
        name,
        email: `${name}@example.test`,
        api_key: apiKey,
      })
    }

    if (request.method === 'POST' && request.path === '/api/external_graders') {
      const participant = Object.entries(options.participants).find(
        ([, k]) => k === params.api_key,
      )?.[0]
      if (!participant)
        return sendJson(response, 400, {
          message: 'The API key did not match any participant record.',
        })
      const challenge = challengeOf()
      if (!challenge || !Object.hasOwn(options.organizerKeys, challenge)) {
        return sendJson(response, 400, {
          message: 'The Challenge Client Name string did not match any challenge.',
        })
      }
      const left = slots.get(participant) ?? 10
      if (left < 1) {
        return sendJson(response, 400, {
          message: 'The participant has no submission slots remaining for today.',
          submission_id: null,
          submissions_remaining: 0,
          reset_dttm: '2026-03-11T00:00:00Z',
        })
      }
      slots.set(participant, left - 1)
      const id = nextId++
      submissions.set(id, {
        id,
        participant,
        challenge,
        meta: parseMeta(params.meta),
        history: [
          {
            status: String(params.grading_status),
            score: params.score ?? null,
            message: params.grading_message ?? null,
          },
        ],
      })
      const answer = {
        message: `Participant ${participant} scored`,
        submission_id: id,
        submissions_remaining: left - 1,
        reset_dttm: '2026-03-11T00:00:00Z',
      }
      const hang = state.hangNextCreateMs
      state.hangNextCreateMs = 0
      if (hang > 0) await new Promise((resolve) => setTimeout(resolve, hang))
      if (!response.destroyed) sendJson(response, 202, answer)
      return
    }

    if (request.method === 'PATCH' && request.path.startsWith('/api/external_graders/')) {
      const id = Number(request.path.split('/').at(-1))
      const submission = submissions.get(id)
      if (!submission) return sendJson(response, 400, { message: 'Submission ID is invalid.' })
      const status = typeof params.grading_status === 'string' ? params.grading_status : undefined
      if (status === 'graded' && (params.score === undefined || params.score === null)) {
        return sendJson(response, 400, { message: 'A graded submission needs a score.' })
      }
      if (status === 'failed' && !params.grading_message) {
        return sendJson(response, 400, {
          message: 'Grading message must be provided if grading = failed',
        })
      }
      if (
        status !== undefined &&
        !['submitted', 'initiated', 'graded', 'failed', 'ready'].includes(status)
      ) {
        return sendJson(response, 400, { message: 'Grading status is invalid' })
      }
      if (params.meta !== undefined) {
        const incoming = parseMeta(params.meta)
        submission.meta =
          params.meta_overwrite === true || params.meta_overwrite === 'true'
            ? incoming
            : { ...incoming, ...submission.meta }
      }
      if (status !== undefined)
        submission.history.push({
          status,
          score: params.score ?? null,
          message: params.grading_message ?? null,
        })
      return sendJson(response, 202, {
        message: `Submission ${id} updated`,
        submission_id: id,
        submissions_remaining: 9,
        reset_date: '2026-03-11T00:00:00Z',
      })
    }

    sendJson(response, 404, { message: 'no such route' })
  })
  return Object.assign(state, { standIn })
}

function tokenOf(request: ReceivedRequest): string | null {
  const header = request.headers.authorization ?? ''
  return /^Token token="?([^"]+)"?$/.exec(header)?.[1] ?? null
}

function parseMeta(meta: unknown): Record<string, unknown> {
  if (typeof meta === 'string') return JSON.parse(meta) as Record<string, unknown>
  return meta && typeof meta === 'object' ? { ...(meta as Record<string, unknown>) } : {}
}
