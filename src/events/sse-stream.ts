import type { IncomingMessage, ServerResponse } from 'node:http'

import type { Logger } from 'pino'

import { errorMessage } from '../domain/errors.ts'
import type { Executor } from '../store/transaction.ts'
import type { EventHub, HubListener } from './event-hub.ts'
import { readLogHeaders, readLogs, readTimeline, type Owned } from './event-rows.ts'
import {
  formatCursor,
  type Cursor,
  type EventOwner,
  type LogEvent,
  type StreamEvent,
} from './stream-event.ts'

export interface SseStreamOptions {
  readonly hub: EventHub
  readonly db: Executor
  readonly request: IncomingMessage
  readonly response: ServerResponse
  readonly log: Logger
  /** One submission, or every submission of one challenge. */
  readonly follow: { readonly submissionId: number } | { readonly challengeId: string }
  /** Whether the caller may see events about this owner. */
  readonly canSee: (owner: EventOwner) => boolean
  readonly withLogs: boolean
  /** What of a stored log this caller may read: its text, a part of it, or null (hidden). */
  readonly logText?: (event: LogEvent) => string | null
  /** Send what comes after this. */
  readonly after: Cursor
  readonly keepAliveMs: number
  /** The `ready` event's data, sent once the backlog is out. */
  readonly ready: () => Promise<unknown>
}

const BACKLOG_PAGE = 500
/** Logs are large (up to the capture cap each): fewer per page. */
const LOG_PAGE = 20
/** A client this far behind is cut off; it reconnects with Last-Event-ID and catches up. */
const MAX_BUFFERED_BYTES = 1024 * 1024
/** How long a client waits before reconnecting, told to it in the stream. */
const RETRY_MS = 2_000

/**
 * One server-sent events stream: the backlog after the client's cursor, then live events
 * from the hub, with keep-alive comments, until the client goes or the hub stops.
 *
 * Invariant: every event is sent once and in id order per kind. The listener joins the hub
 * before the backlog is read, and holds what the hub delivers until the backlog is out; any
 * event with an id at or below what was sent is dropped.
 */
export async function runSseStream(options: SseStreamOptions): Promise<void> {
  const { response, log } = options
  let cursor: Cursor = options.after
  let catchingUp = true
  let held: Owned<StreamEvent>[] = []
  let ended = false
  // Keep-alives start at once: a long backlog must not let a proxy time the stream out.
  const keepAlive = setInterval(() => write(': keep-alive\n\n'), options.keepAliveMs)
  let unsubscribe: (() => void) | undefined
  let resolveDone: () => void = () => undefined
  const done = new Promise<void>((resolve) => (resolveDone = resolve))

  function end(): void {
    if (ended) return
    ended = true
    clearInterval(keepAlive)
    unsubscribe?.()
    if (!response.writableEnded) response.end()
    resolveDone()
  }

  function write(text: string): void {
    if (ended) return
    response.write(text)
    if (response.writableLength > MAX_BUFFERED_BYTES) {
      log.warn({ buffered: response.writableLength }, 'event stream client too slow; closing it')
      response.destroy()
      end()
    }
  }

  function send(events: readonly Owned<StreamEvent>[]): void {
    for (const { event, owner } of events) {
      const isNew = event.type === 'log' ? event.id > cursor.log : event.id > cursor.event
      if (!isNew || !options.canSee(owner)) continue
      let sent: StreamEvent = event
      if (event.type === 'log') {
        const text = options.logText ? options.logText(event) : event.text
        if (text === null) continue
        sent = { ...event, text }
      }
      cursor = event.type === 'log' ? { ...cursor, log: event.id } : { ...cursor, event: event.id }
      const name = sent.type === 'log' ? 'log' : sent.kind
      write(
        `id: ${formatCursor(cursor, options.withLogs)}\nevent: ${name}\ndata: ${JSON.stringify(sent)}\n\n`,
      )
    }
  }

  const listener: HubListener = {
    ...('submissionId' in options.follow
      ? { submissionId: options.follow.submissionId }
      : { challengeId: options.follow.challengeId }),
    wantsLogs: options.withLogs,
    deliver(events) {
      if (catchingUp) held.push(...events)
      else send(events)
    },
    close: end,
  }

  options.request.on('close', end)
  response.on('error', end)
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    // nginx buffers responses unless told not to; events would arrive in bursts.
    'x-accel-buffering': 'no',
  })
  write(`retry: ${RETRY_MS}\n: proctor event stream\n\n`)

  try {
    unsubscribe = await options.hub.subscribe(listener)
    if (ended) unsubscribe()
    await sendBacklog(options, send, () => ended)
    catchingUp = false
    send(held)
    held = []
    write(`event: ready\ndata: ${JSON.stringify(await options.ready())}\n\n`)
  } catch (err) {
    log.warn({ err: errorMessage(err) }, 'event stream failed; the client will reconnect')
    response.destroy()
    end()
  }
  return done
}

/** Sends what was stored after the cursor, page by page, oldest first. */
async function sendBacklog(
  options: SseStreamOptions,
  send: (events: readonly Owned<StreamEvent>[]) => void,
  isEnded: () => boolean,
): Promise<void> {
  const follow = options.follow
  // Paged by the rows read, not by the rows sent: rows the caller may not see are skipped.
  let afterEvent = options.after.event
  for (;;) {
    const page = await readTimeline(options.db, {
      afterId: afterEvent,
      limit: BACKLOG_PAGE,
      ...follow,
    })
    send(page)
    afterEvent = page.at(-1)?.event.id ?? afterEvent
    if (page.length < BACKLOG_PAGE || isEnded()) break
  }
  if (!options.withLogs || !('submissionId' in follow)) return
  let afterLog = options.after.log
  for (;;) {
    const headers = await readLogHeaders(options.db, {
      afterId: afterLog,
      submissionId: follow.submissionId,
      limit: LOG_PAGE,
    })
    send(
      await readLogs(
        options.db,
        headers.map((h) => h.id),
      ),
    )
    afterLog = headers.at(-1)?.id ?? afterLog
    if (headers.length < LOG_PAGE || isEnded()) break
  }
}
