import { isPermanentStatus, PermanentDeliveryError, TransientDeliveryError } from './target.ts'

export interface HttpRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH'
  readonly url: string
  readonly headers?: Readonly<Record<string, string>>
  /** The exact bytes sent (signatures are computed over them). */
  readonly body?: string
  readonly timeoutMs: number
  readonly signal?: AbortSignal
}

export interface HttpResponse {
  readonly status: number
  readonly text: string
  /** The body parsed as JSON, or null when it is not JSON. */
  readonly json: unknown
}

const BODY_EXCERPT = 300

/**
 * Sends one request and reads the whole answer. Throws TransientDeliveryError when no answer
 * arrives (refused connection, reset, timeout): the caller cannot know whether the other side
 * acted on it. Any status is returned; `expectSuccess` classifies it.
 */
export async function sendHttp(request: HttpRequest): Promise<HttpResponse> {
  const timeout = AbortSignal.timeout(request.timeoutMs)
  const signal = request.signal ? AbortSignal.any([request.signal, timeout]) : timeout
  const where = `${request.method} ${describeUrl(request.url)}`
  try {
    const response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      signal,
      redirect: 'manual',
    })
    const text = await response.text()
    return { status: response.status, text, json: parseJson(text) }
  } catch (err) {
    const reason = timeout.aborted
      ? `no answer within ${request.timeoutMs} ms`
      : request.signal?.aborted
        ? 'stopped by proctor (shutting down)'
        : `unreachable (${networkReason(err)})`
    throw new TransientDeliveryError(`${where}: ${reason}`, { cause: err })
  }
}

/**
 * Returns the response when it is a success (2xx, 3xx); throws PermanentDeliveryError for a
 * refusal (4xx but 408 and 429) and TransientDeliveryError for the rest, with the status and
 * what the other side said.
 */
export function expectSuccess(response: HttpResponse, what: string): HttpResponse {
  if (response.status < 400) return response
  const said = responseMessage(response)
  const message = `${what}: HTTP ${response.status}${said ? `: ${said}` : ''}`
  if (isPermanentStatus(response.status)) {
    throw new PermanentDeliveryError(message, { status: response.status })
  }
  throw new TransientDeliveryError(message, { status: response.status })
}

/** The `message` (or `error`) of a JSON answer, else the start of its text. */
export function responseMessage(response: HttpResponse): string {
  const body = response.json
  if (body && typeof body === 'object') {
    for (const key of ['message', 'error', 'error_description']) {
      const value = (body as Record<string, unknown>)[key]
      if (typeof value === 'string' && value !== '') return value.slice(0, BODY_EXCERPT)
      if (value && typeof value === 'object') return JSON.stringify(value).slice(0, BODY_EXCERPT)
    }
  }
  return response.text.trim().slice(0, BODY_EXCERPT)
}

/** Origin and path only: never a query string or credentials in a message. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`
  } catch {
    return '(invalid URL)'
  }
}

function parseJson(text: string): unknown {
  if (text === '') return null
  try {
    return JSON.parse(text) as unknown
  } catch {
    return null
  }
}

function networkReason(err: unknown): string {
  const cause = err instanceof Error ? (err.cause as { code?: string } | undefined) : undefined
  if (cause?.code) return cause.code
  return err instanceof Error ? err.message : String(err)
}
