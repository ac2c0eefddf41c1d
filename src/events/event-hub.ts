import type { Logger } from 'pino'

import { errorMessage } from '../domain/errors.ts'
import type { Store } from '../store/database.ts'
import { latestCursor, readLogHeaders, readLogs, readTimeline, type Owned } from './event-rows.ts'
import type { StreamEvent } from './stream-event.ts'

/** Someone following events: one open stream. */
export interface HubListener {
  /** Follow one submission, or every submission of one challenge. */
  readonly submissionId?: number
  readonly challengeId?: string
  /** Whether this listener receives stored logs (operators only, for now). */
  readonly wantsLogs: boolean
  deliver(events: readonly Owned<StreamEvent>[]): void
  /** The hub is stopping: end the stream. */
  close(): void
}

export interface EventHubOptions {
  /** How often the store is read while anyone listens. Default 250 ms. */
  readonly intervalMs?: number
}

const DEFAULT_INTERVAL_MS = 250
const BATCH = 500
const RETRY_AFTER_ERROR_MS = 2_000

/**
 * One poller per process that reads new timeline entries and logs from the store and fans
 * them out to every open stream. proctor's writers (workers, intake, organizer actions) may
 * run in other processes, so the store is the only place every event passes through; one
 * indexed query per tick serves any number of streams. It reads only while someone listens.
 *
 * Latency: an event reaches a stream at most one interval (250 ms) plus a query after it
 * commits.
 *
 * Ids: SQLite writes one transaction at a time, so its ids commit in order and "after the
 * last id seen" misses nothing. A PostgreSQL sequence hands out ids before commit, so a
 * later id can commit first: there the poller re-reads a window of LOOKBACK ids behind its
 * cursor and drops the ones it already sent. A transaction that commits more than LOOKBACK
 * ids late is missed (a reconnecting client would get it).
 */
export class EventHub {
  readonly #store: Store
  readonly #log: Logger
  readonly #intervalMs: number
  readonly #listeners = new Set<HubListener>()
  readonly #events: IdWindow
  readonly #logs: IdWindow
  #started: Promise<void> | null = null
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  constructor(store: Store, log: Logger, options: EventHubOptions = {}) {
    this.#store = store
    this.#log = log
    this.#intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS
    const lookback = store.dialect === 'postgres' ? 100 : 0
    this.#events = new IdWindow(lookback)
    this.#logs = new IdWindow(lookback)
  }

  get listenerCount(): number {
    return this.#listeners.size
  }

  /**
   * Adds a listener. Resolves once the hub's cursor is set, so every event committed after
   * this resolves reaches the listener: a stream reads its backlog only after that, and drops
   * events it already sent by id.
   */
  async subscribe(listener: HubListener): Promise<() => void> {
    if (this.#stopped) throw new Error('the event hub is stopped')
    this.#listeners.add(listener)
    try {
      await this.#start()
    } catch (err) {
      this.#listeners.delete(listener)
      throw err
    }
    return () => {
      this.#listeners.delete(listener)
    }
  }

  /** Ends every stream and stops reading. */
  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    for (const listener of this.#listeners) listener.close()
    this.#listeners.clear()
  }

  #start(): Promise<void> {
    this.#started ??= latestCursor(this.#store.db).then(
      (cursor) => {
        this.#events.reset(cursor.event)
        this.#logs.reset(cursor.log)
        this.#schedule(this.#intervalMs)
      },
      (err: unknown) => {
        this.#started = null
        throw err
      },
    )
    return this.#started
  }

  #schedule(ms: number): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => void this.#tick(), ms)
    this.#timer.unref()
  }

  async #tick(): Promise<void> {
    if (this.#listeners.size === 0) {
      // Nobody listens: forget the cursor; the next listener starts from the newest event.
      this.#started = null
      return
    }
    let full = false
    try {
      full = await this.#poll()
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'could not read new events; retrying')
      this.#schedule(RETRY_AFTER_ERROR_MS)
      return
    }
    this.#schedule(full ? 0 : this.#intervalMs)
  }

  /** One read of the store; true when a batch came back full (more is waiting). */
  async #poll(): Promise<boolean> {
    const { db } = this.#store
    const timeline = this.#events.fresh(
      await readTimeline(db, { afterId: this.#events.lowWater, limit: BATCH }),
      (row) => row.event.id,
    )
    const headers = this.#logs.fresh(
      await readLogHeaders(db, { afterId: this.#logs.lowWater, limit: BATCH }),
      (row) => row.id,
    )
    const followed = new Set<number>()
    for (const l of this.#listeners)
      if (l.wantsLogs && l.submissionId !== undefined) followed.add(l.submissionId)
    const logs = await readLogs(
      db,
      headers.filter((h) => followed.has(h.submissionId)).map((h) => h.id),
    )

    const events: Owned<StreamEvent>[] = [...timeline, ...logs]
    if (events.length > 0) {
      for (const listener of this.#listeners) {
        const mine = events.filter((e) => follows(listener, e.event))
        if (mine.length > 0) listener.deliver(mine)
      }
    }
    return timeline.length === BATCH || headers.length === BATCH
  }
}

function follows(listener: HubListener, event: StreamEvent): boolean {
  if (event.type === 'log' && !listener.wantsLogs) return false
  if (listener.submissionId !== undefined) return event.submissionId === listener.submissionId
  return listener.challengeId !== undefined && event.challengeId === listener.challengeId
}

/**
 * The ids a poller has seen: a cursor, and (with a lookback) the ids just behind it, so a
 * row that commits late is picked up once and only once.
 */
class IdWindow {
  readonly #lookback: number
  #cursor = 0
  readonly #seen = new Set<number>()

  constructor(lookback: number) {
    this.#lookback = lookback
  }

  get lowWater(): number {
    return Math.max(0, this.#cursor - this.#lookback)
  }

  reset(cursor: number): void {
    this.#cursor = cursor
    this.#seen.clear()
  }

  /** The rows not seen before; remembers them and moves the cursor. */
  fresh<T>(rows: readonly T[], idOf: (row: T) => number): T[] {
    const fresh = rows.filter(
      (row) => idOf(row) > this.#cursor || (this.#lookback > 0 && !this.#seen.has(idOf(row))),
    )
    if (this.#lookback === 0) {
      for (const row of fresh) this.#cursor = Math.max(this.#cursor, idOf(row))
      return fresh
    }
    for (const row of fresh) {
      this.#seen.add(idOf(row))
      this.#cursor = Math.max(this.#cursor, idOf(row))
    }
    for (const id of this.#seen) if (id <= this.lowWater) this.#seen.delete(id)
    return fresh
  }
}
