import { setTimeout as sleep } from 'node:timers/promises'

import { ProctorError } from '../domain/errors.ts'
import type { ApiClient } from './api-client.ts'

export interface SseMessage {
  readonly event: string
  readonly id: string | null
  readonly data: string
}

/** Server-sent event messages from a response body, as the spec splits them. */
export async function* readSse(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<SseMessage | { retry: number }> {
  const decoder = new TextDecoder()
  let buffer = ''
  let event = 'message'
  let id: string | null = null
  let data: string[] = []
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true })
    let newline: number
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, newline)
      buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1))
      if (line === '') {
        if (data.length > 0 || id !== null) yield { event, id, data: data.join('\n') }
        event = 'message'
        id = null
        data = []
        continue
      }
      if (line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'event') event = value
      else if (field === 'data') data.push(value)
      else if (field === 'id') id = value
      else if (field === 'retry' && /^\d+$/.test(value)) yield { retry: Number(value) }
    }
  }
}

export interface FollowOptions {
  /** Called per message; return true to stop following. */
  readonly onMessage: (message: SseMessage) => boolean | Promise<boolean>
  readonly onReconnect?: (attempt: number) => void
  /** Reconnects in a row before giving up (default 30: a minute at the server's pace). */
  readonly maxReconnects?: number
}

/**
 * Follows a stream until `onMessage` says stop, reconnecting with Last-Event-ID when the
 * connection drops: no event is missed or shown twice. The first connection failing is
 * `api_unreachable`, as for any call.
 */
export async function followStream(
  client: ApiClient,
  path: string,
  options: FollowOptions,
): Promise<void> {
  let lastEventId: string | null = null
  let retryMs = 2000
  let failures = 0
  const limit = options.maxReconnects ?? 30
  for (;;) {
    const controller = new AbortController()
    let stopped = false
    try {
      const response = await client.openStream(path, lastEventId, controller.signal)
      if (!response.body) throw new ProctorError('stream_failed', `${path}: the answer has no body`)
      for await (const message of readSse(response.body)) {
        if ('retry' in message) {
          retryMs = message.retry
          continue
        }
        failures = 0
        if (message.id !== null) lastEventId = message.id
        if (await options.onMessage(message)) {
          stopped = true
          break
        }
      }
    } catch (err) {
      // Refusals (404, 401…) do not get better by retrying; a first connection that fails
      // means proctor is not there.
      const isHttp = err instanceof ProctorError && err.code.startsWith('http_')
      if (
        !stopped &&
        (isHttp || (lastEventId === null && failures === 0 && err instanceof ProctorError))
      )
        throw err
    } finally {
      controller.abort()
    }
    if (stopped) return
    failures++
    if (failures > limit) {
      throw new ProctorError(
        'api_unreachable',
        `lost the event stream ${path} and could not reconnect`,
      )
    }
    options.onReconnect?.(failures)
    await sleep(retryMs)
  }
}
