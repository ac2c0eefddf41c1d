import type { Logger } from 'pino'

import { errorMessage } from '../domain/errors.ts'
import { evaluateAlerts, type AlertCondition, type AlertContext } from './alert-conditions.ts'

/** What the webhook receives: `text` for chat tools, the conditions for everything else. */
export interface AlertNotice {
  readonly source: 'proctor'
  readonly text: string
  /** Conditions that started since the last notice. */
  readonly firing: readonly AlertCondition[]
  /** Conditions that held at the last notice and hold no more. */
  readonly resolved: readonly AlertCondition[]
  /** Every condition that holds now. */
  readonly active: readonly AlertCondition[]
  readonly at: string
}

interface Tracked {
  condition: AlertCondition
  /** When the webhook last heard of it; null until a notice about it got through. */
  notifiedAt: number | null
}

const WEBHOOK_TIMEOUT_MS = 10_000

/**
 * The periodic alert check of the serving process: evaluates the conditions, and POSTs a
 * notice to `alerts.webhookUrl` when a condition starts, every `repeatEverySeconds` while it
 * lasts, and when it ends. A notice that fails is sent again at the next check: nothing is
 * marked as told until the webhook answered 2xx.
 *
 *   POST <webhookUrl>
 *   {"source":"proctor","text":"proctor: 1 new alert\n• [critical] worker w1 on gpu-2 has not…",
 *    "firing":[{"key":"worker_lost:w1","kind":"worker_lost",…}],"resolved":[],"active":[…]}
 */
export class AlertChecker {
  readonly #ctx: AlertContext
  readonly #log: Logger
  readonly #tracked = new Map<string, Tracked>()
  readonly #resolved = new Map<string, AlertCondition>()
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | null = null

  constructor(ctx: AlertContext, log: Logger) {
    this.#ctx = ctx
    this.#log = log
  }

  start(): void {
    const every = this.#ctx.config.alerts.checkEverySeconds * 1000
    this.#timer = setInterval(() => void this.check(), every)
    this.#timer.unref()
    this.#log.info(
      { everySeconds: every / 1000, webhook: this.#ctx.config.alerts.webhookUrl ? 'set' : 'none' },
      'alert checks started',
    )
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await this.#running
  }

  /** One check; overlapping calls share the one in progress. */
  check(): Promise<void> {
    this.#running ??= this.#check().finally(() => (this.#running = null))
    return this.#running
  }

  async #check(): Promise<void> {
    let active: AlertCondition[]
    try {
      active = await evaluateAlerts(this.#ctx)
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'alert check failed; will try again')
      return
    }

    const now = this.#ctx.clock.now().getTime()
    const keys = new Set(active.map((c) => c.key))
    for (const [key, tracked] of this.#tracked) {
      if (keys.has(key)) continue
      this.#tracked.delete(key)
      // A condition nobody was told about ends silently.
      if (tracked.notifiedAt !== null) this.#resolved.set(key, tracked.condition)
    }
    for (const condition of active) {
      const tracked = this.#tracked.get(condition.key)
      if (tracked) tracked.condition = condition
      else this.#tracked.set(condition.key, { condition, notifiedAt: null })
    }

    const repeatMs = this.#ctx.config.alerts.repeatEverySeconds * 1000
    const due = [...this.#tracked.values()].filter(
      (t) => t.notifiedAt === null || now - t.notifiedAt >= repeatMs,
    )
    const resolved = [...this.#resolved.values()]
    if (due.length === 0 && resolved.length === 0) return
    for (const t of due)
      if (t.notifiedAt === null) this.#log.warn({ alert: t.condition.key }, t.condition.summary)
    for (const r of resolved) this.#log.info({ alert: r.key }, 'alert condition resolved')

    const url = this.#ctx.config.alerts.webhookUrl
    if (!url) {
      for (const t of due) t.notifiedAt = now
      this.#resolved.clear()
      return
    }
    const notice = buildNotice(
      due.filter((t) => t.notifiedAt === null).map((t) => t.condition),
      resolved,
      active,
      new Date(now),
    )
    if (await this.#post(url, notice)) {
      for (const t of due) t.notifiedAt = now
      this.#resolved.clear()
    }
  }

  async #post(url: string, notice: AlertNotice): Promise<boolean> {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(notice),
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      })
      await response.body?.cancel()
      if (response.ok) return true
      this.#log.warn(
        { status: response.status },
        'the alert webhook refused a notice; will send it again',
      )
    } catch (err) {
      this.#log.warn(
        { err: errorMessage(err) },
        'could not reach the alert webhook; will send again',
      )
    }
    return false
  }
}

function buildNotice(
  firing: AlertCondition[],
  resolved: AlertCondition[],
  active: AlertCondition[],
  at: Date,
): AlertNotice {
  const heading = [
    firing.length > 0 ? `${firing.length} new alert(s)` : '',
    resolved.length > 0 ? `${resolved.length} resolved` : '',
    firing.length === 0 && resolved.length === 0 ? `${active.length} alert(s) still active` : '',
  ]
    .filter(Boolean)
    .join(', ')
  const lines = [
    `proctor: ${heading}`,
    ...(firing.length > 0 ? firing : active).map((c) => `• [${c.severity}] ${c.summary}`),
    ...resolved.map((c) => `• resolved: ${c.key}`),
  ]
  return {
    source: 'proctor',
    text: lines.join('\n'),
    firing,
    resolved,
    active,
    at: at.toISOString(),
  }
}
