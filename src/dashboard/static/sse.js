// Server-sent events over fetch: EventSource cannot send an Authorization header, and the
// token must stay out of URLs. Reconnects with Last-Event-ID, so nothing is missed or repeated.

import { authHeaders } from './api.js'

/**
 * follow('/api/submissions/42/events', { onEvent, onReady, onStatus, signal })
 * onEvent({ event, id, data }) for each message with data; onReady(data) after the backlog;
 * onStatus('connecting' | 'live' | 'reconnecting' | 'closed', detail).
 */
export function follow(path, { onEvent, onReady = () => {}, onStatus = () => {}, signal }) {
  let lastEventId = null
  let retryMs = 2000

  async function connect() {
    onStatus('connecting')
    const headers = authHeaders({ accept: 'text/event-stream' })
    if (lastEventId !== null) headers['last-event-id'] = lastEventId
    const response = await fetch(path, { headers, signal })
    if (response.status === 401 || response.status === 403 || response.status === 404) {
      const json = await response.json().catch(() => null)
      onStatus('closed', json?.message ?? `HTTP ${response.status}`)
      return false
    }
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`)

    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''
    let message = { event: 'message', data: [], id: null }
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return true
      buffer += value
      let newline
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline)
        buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1))
        if (line === '') {
          dispatch(message)
          message = { event: 'message', data: [], id: null }
          continue
        }
        if (line.startsWith(':')) continue
        const colon = line.indexOf(':')
        const field = colon < 0 ? line : line.slice(0, colon)
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
        if (field === 'event') message.event = text
        else if (field === 'data') message.data.push(text)
        else if (field === 'id') message.id = text
        else if (field === 'retry' && /^\d+$/.test(text)) retryMs = Number(text)
      }
    }
  }

  function dispatch(message) {
    if (message.id !== null) lastEventId = message.id
    if (message.data.length === 0) return
    const data = JSON.parse(message.data.join('\n'))
    if (message.event === 'ready') {
      onStatus('live')
      onReady(data)
    } else {
      onEvent({ event: message.event, id: message.id, data })
    }
  }

  async function run() {
    while (!signal?.aborted) {
      try {
        const again = await connect()
        if (!again) return
      } catch (err) {
        if (signal?.aborted) return
      }
      if (signal?.aborted) return
      onStatus('reconnecting')
      await new Promise((resolve) => setTimeout(resolve, retryMs))
    }
  }

  void run()
}
