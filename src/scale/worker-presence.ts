import type { Logger } from 'pino'

import type { AppContext } from '../app/context.ts'
import { errorMessage } from '../domain/errors.ts'

/** How often a worker process says it is alive, whether or not it runs a job. */
export const PRESENCE_INTERVAL_MS = 10_000

/**
 * Keeps a worker's row in `workers` fresh: `heartbeat_at` every interval and `state` back to
 * `alive` if the reaper had marked it lost (a long database outage, a paused VM). The job
 * heartbeats in worker.ts only run while a job does; an idle worker is alive too.
 */
export class WorkerPresence {
  readonly #ctx: Pick<AppContext, 'store' | 'clock'>
  readonly #workerId: string
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined
  #failing = false

  constructor(ctx: Pick<AppContext, 'store' | 'clock'>, workerId: string, log: Logger) {
    this.#ctx = ctx
    this.#workerId = workerId
    this.#log = log
  }

  start(intervalMs = PRESENCE_INTERVAL_MS): void {
    this.#timer = setInterval(() => void this.beat(), intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  /** One heartbeat. Never throws: a database outage is logged once, then on recovery. */
  async beat(): Promise<void> {
    try {
      await this.#ctx.store.db
        .updateTable('workers')
        .set({ heartbeat_at: this.#ctx.clock.now().toISOString(), state: 'alive' })
        .where('id', '=', this.#workerId)
        .where('state', '!=', 'stopped')
        .execute()
      if (this.#failing) this.#log.info('worker heartbeat recorded again')
      this.#failing = false
    } catch (err) {
      if (!this.#failing) {
        this.#log.warn({ err: errorMessage(err) }, 'could not record the worker heartbeat')
      }
      this.#failing = true
    }
  }
}
