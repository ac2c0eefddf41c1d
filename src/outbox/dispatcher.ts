import { randomUUID } from 'node:crypto'

import type { Logger } from 'pino'

import type { Clock } from '../domain/clock.ts'
import { errorMessage } from '../domain/errors.ts'
import type { Store } from '../store/database.ts'
import { DEFAULT_BACKOFF, retryDelayMs, type BackoffPolicy } from './backoff.ts'
import { OutboxStore, type ClaimedMessage } from './outbox-store.ts'
import { PermanentDeliveryError, type DeliveryResult, type OutboxTarget } from './target.ts'

export interface DispatcherOptions {
  /** Names this dispatcher in logs. */
  readonly id?: string
  /** How often an idle dispatcher looks for due messages. */
  readonly pollMs?: number
  /** How long a claim holds a message; MUST exceed the slowest target's request timeout. */
  readonly leaseMs?: number
  /** Deliveries in flight at once (each to a different group). */
  readonly concurrency?: number
  readonly backoff?: BackoffPolicy
  /** Removes secrets from an error message before it is stored or logged. */
  readonly redact?: (text: string) => string
}

export interface DispatcherDeps {
  readonly store: Store
  readonly clock: Clock
  readonly log: Logger
}

/**
 * Delivers outbox messages to their targets: one per process, and safe beside others (in
 * this process or another) because each message is claimed with a lease (OutboxStore).
 *
 * - Per (target, submission), strictly in order: a message is claimable only when every
 *   earlier one of its group is delivered or dead.
 * - Trouble worth retrying (unreachable, timeout, 5xx, 408, 429) is retried with exponential
 *   backoff and jitter, without limit: a platform down for a day gets its messages after.
 * - A refusal (PermanentDeliveryError) stops that message: it is `dead`, with the reason,
 *   until an operator retries it (`POST /api/outbox/:id/retry`).
 * - Nothing lives only in memory: a restarted process finds its pending messages, and a
 *   message whose dispatcher died is claimed again once its lease expires.
 */
export class OutboxDispatcher {
  readonly id: string
  readonly #outbox: OutboxStore
  readonly #targets: ReadonlyMap<string, OutboxTarget>
  readonly #log: Logger
  readonly #pollMs: number
  readonly #leaseMs: number
  readonly #concurrency: number
  readonly #backoff: BackoffPolicy
  readonly #redact: (text: string) => string
  readonly #inflight = new Set<Promise<void>>()
  readonly #abort = new AbortController()
  #running = false
  #loop: Promise<void> | null = null
  #wakeUp: (() => void) | null = null

  constructor(
    deps: DispatcherDeps,
    targets: readonly OutboxTarget[],
    options: DispatcherOptions = {},
  ) {
    this.id = options.id ?? `outbox-${randomUUID().slice(0, 8)}`
    this.#outbox = new OutboxStore(deps.store, deps.clock)
    this.#targets = new Map(targets.map((t) => [t.id, t]))
    this.#log = deps.log.child({ part: 'outbox', dispatcher: this.id })
    this.#pollMs = options.pollMs ?? 1_000
    this.#leaseMs = options.leaseMs ?? 120_000
    this.#concurrency = Math.max(1, options.concurrency ?? 8)
    this.#backoff = options.backoff ?? DEFAULT_BACKOFF
    this.#redact = options.redact ?? ((text) => text)
  }

  get targets(): string[] {
    return [...this.#targets.keys()]
  }

  start(): void {
    if (this.#running) return
    this.#running = true
    this.#loop = this.#run()
    this.#log.info({ targets: this.targets }, 'outbox dispatcher started')
  }

  /**
   * Stops claiming. `graceful` waits for the deliveries in flight to end (each is bounded by
   * its target's timeout); `immediate` aborts them and gives their messages back untried.
   */
  async stop(mode: 'graceful' | 'immediate' = 'graceful'): Promise<void> {
    if (!this.#running) return
    this.#running = false
    if (mode === 'immediate') this.#abort.abort()
    this.wake()
    await this.#loop
    await Promise.all([...this.#inflight])
    this.#log.info({ mode }, 'outbox dispatcher stopped')
  }

  /** Looks for due messages now instead of at the next poll. */
  wake(): void {
    const wakeUp = this.#wakeUp
    this.#wakeUp = null
    wakeUp?.()
  }

  /**
   * One pass without the loop: claims what is due (up to the concurrency) and delivers it.
   * Resolves when those deliveries end, with how many were claimed. For tests and tools.
   */
  async deliverDue(): Promise<number> {
    const claimed = await this.#claim(this.#concurrency)
    await Promise.all(
      claimed.map((message) => this.#deliver(message).catch((err: unknown) => this.#crashed(err))),
    )
    return claimed.length
  }

  async #run(): Promise<void> {
    while (this.#running) {
      const free = this.#concurrency - this.#inflight.size
      const claimed = free > 0 ? await this.#claim(free) : []
      for (const message of claimed) this.#track(this.#deliver(message))
      if (claimed.length === 0 || this.#inflight.size >= this.#concurrency) await this.#idle()
    }
  }

  async #claim(limit: number): Promise<ClaimedMessage[]> {
    try {
      return await this.#outbox.claim({ targets: this.targets, limit, leaseMs: this.#leaseMs })
    } catch (err) {
      this.#log.warn(
        { err: errorMessage(err) },
        'could not claim outbox messages; trying again at the next poll',
      )
      return []
    }
  }

  #track(delivery: Promise<void>): void {
    const tracked: Promise<void> = delivery
      .catch((err: unknown) => this.#crashed(err))
      .finally(() => {
        this.#inflight.delete(tracked)
        this.wake()
      })
    this.#inflight.add(tracked)
  }

  /** A delivery whose outcome could not be recorded (the store failed): its lease expires. */
  #crashed(err: unknown): void {
    this.#log.error(
      { err: this.#redact(errorMessage(err)) },
      'could not record an outbox delivery; its lease will expire and it is retried',
    )
  }

  /** Waits for a poll interval, a wake-up, or a delivery ending, whichever comes first. */
  async #idle(): Promise<void> {
    if (!this.#running) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.#pollMs)
      this.#wakeUp = done
      function done() {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  async #deliver(message: ClaimedMessage): Promise<void> {
    const log = this.#log.child({
      outboxId: message.id,
      target: message.target,
      submissionId: message.submissionId,
      attempt: message.attempt,
    })
    const target = this.#targets.get(message.target)
    if (!target) {
      await this.#outbox.release(message)
      return
    }

    const started = Date.now()
    let result: DeliveryResult
    try {
      result = await target.deliver(message, this.#abort.signal)
    } catch (err) {
      await this.#recordFailure(message, err, log)
      return
    }

    if (result.outcome === 'deferred') {
      await this.#outbox.defer(message, result.until)
      log.debug({ until: result.until.toISOString() }, 'delivery deferred by its target')
      return
    }
    const kept = await this.#outbox.delivered(message)
    if (kept) log.debug({ ms: Date.now() - started, event: message.payload.event }, 'delivered')
    else
      log.warn(
        'delivered after this dispatcher lost its lease; the target may see it again and drops it by its key',
      )
  }

  async #recordFailure(message: ClaimedMessage, err: unknown, log: Logger): Promise<void> {
    if (this.#abort.signal.aborted) {
      await this.#outbox.release(message)
      return
    }
    const reason = this.#redact(errorMessage(err))
    if (err instanceof PermanentDeliveryError) {
      await this.#outbox.dead(message, reason)
      log.error(
        { err: reason, status: err.status },
        `the target refused outbox message ${message.id} for good; fix the cause, then POST /api/outbox/${message.id}/retry`,
      )
      return
    }
    const delayMs = retryDelayMs(message.attempt, this.#backoff)
    await this.#outbox.retryLater(message, delayMs, reason)
    log.warn({ err: reason, delayMs }, 'delivery failed; retrying later')
  }
}
