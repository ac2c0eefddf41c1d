import { ProctorError } from '../domain/errors.ts'
import { addDays, assertTimeZone, localDate, startOfLocalDay, weekdayOf } from './zoned-time.ts'

/**
 * Quota windows. Both kinds are half-open, so a boundary instant belongs to exactly one
 * window (see docs/quotas.md for examples):
 *
 * - rolling `W` at time t counts charges in (t − W, t]: a unit charged at 10:00 with a 24 h
 *   window frees at 10:00 the next day, exactly. Rolling windows are real elapsed time, so
 *   a daylight-saving change does not touch them.
 * - calendar `day`/`week` in an IANA zone counts charges in [start of the local period,
 *   start of the next one). Local midnight is computed in the zone, so a day with a
 *   daylight-saving change is 23 or 25 hours long and nothing is counted twice or skipped.
 *   Weeks start on Monday.
 */
export type QuotaWindow =
  | { kind: 'rolling'; ms: number }
  | { kind: 'calendar'; period: 'day' | 'week'; timeZone: string }

export interface WindowBounds {
  /** Charges at or before this instant are outside the window (exclusive for rolling). */
  start: Date
  startInclusive: boolean
  /** When the current calendar period ends; undefined for rolling windows. */
  end?: Date
}

export const DEFAULT_WINDOW = '24h'

/**
 * Reads a quota's window from a challenge or round: `window: 24h` (also `90m`, `7d`) for a
 * rolling window, or `period: day|week` with `timeZone` for a calendar one.
 */
export function parseWindow(quota: {
  window?: string | undefined
  period?: 'day' | 'week' | undefined
  timeZone?: string
}): QuotaWindow {
  if (quota.period) {
    const timeZone = quota.timeZone ?? 'UTC'
    assertTimeZone(timeZone)
    return { kind: 'calendar', period: quota.period, timeZone }
  }

  const text = quota.window ?? DEFAULT_WINDOW
  const match = /^(\d+)([mhd])$/.exec(text)
  const amount = Number(match?.[1] ?? 0)
  if (!match || amount <= 0) {
    throw new ProctorError(
      'quota_invalid',
      `quota window "${text}" is not a positive <number>m|h|d (such as 24h)`,
    )
  }
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'm' | 'h' | 'd']
  return { kind: 'rolling', ms: amount * unit }
}

export function windowBounds(window: QuotaWindow, now: Date): WindowBounds {
  if (window.kind === 'rolling') {
    return { start: new Date(now.getTime() - window.ms), startInclusive: false }
  }
  const [start, end] = calendarPeriod(window, now)
  return { start, startInclusive: true, end }
}

/** When a unit charged at `chargedAt` stops counting. */
export function releaseTime(window: QuotaWindow, chargedAt: Date): Date {
  if (window.kind === 'rolling') return new Date(chargedAt.getTime() + window.ms)
  return calendarPeriod(window, chargedAt)[1]
}

/** The local day or week (Monday first) holding `at`, as [start, end). */
function calendarPeriod(
  window: Extract<QuotaWindow, { kind: 'calendar' }>,
  at: Date,
): [Date, Date] {
  const today = localDate(at, window.timeZone)
  const first = window.period === 'week' ? addDays(today, -weekdayOf(today)) : today
  const length = window.period === 'week' ? 7 : 1
  return [
    startOfLocalDay(first, window.timeZone),
    startOfLocalDay(addDays(first, length), window.timeZone),
  ]
}
