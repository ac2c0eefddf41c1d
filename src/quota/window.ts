/**
 * Quota windows. Both kinds are half-open, so a boundary instant belongs to exactly one
 * window:
 *
 * - rolling `W` at time t counts charges in (t − W, t]: a unit charged at 10:00 with a 24 h
 *   window frees at 10:00 the next day, exactly.
 * - calendar `day`/`week` in a time zone counts charges in [start of the local period,
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

export function parseWindow(quota: { window?: string | undefined; period?: 'day' | 'week' | undefined; timeZone?: string }): QuotaWindow {
  if (quota.period) return { kind: 'calendar', period: quota.period, timeZone: quota.timeZone ?? 'UTC' }
  const text = quota.window ?? '24h'
  const match = /^(\d+)([mhd])$/.exec(text)
  if (!match) throw new Error(`quota window ${text} is not <number>m|h|d`)
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'm' | 'h' | 'd']
  return { kind: 'rolling', ms: Number(match[1]) * unit }
}

export function windowBounds(window: QuotaWindow, now: Date): WindowBounds {
  if (window.kind === 'rolling') {
    return { start: new Date(now.getTime() - window.ms), startInclusive: false }
  }
  const start = startOfLocalPeriod(now, window.period, window.timeZone)
  const end = startOfLocalPeriod(addLocalDays(start, window.period === 'day' ? 1 : 7, window.timeZone), window.period, window.timeZone)
  return { start, startInclusive: true, end }
}

/** When a unit charged at `chargedAt` stops counting. */
export function releaseTime(window: QuotaWindow, chargedAt: Date): Date {
  if (window.kind === 'rolling') return new Date(chargedAt.getTime() + window.ms)
  const start = startOfLocalPeriod(chargedAt, window.period, window.timeZone)
  return startOfLocalPeriod(addLocalDays(start, window.period === 'day' ? 1 : 7, window.timeZone), window.period, window.timeZone)
}

interface LocalParts {
  year: number
  month: number
  day: number
  hour: number
  minute: number
  second: number
  weekday: number
}

const formatters = new Map<string, Intl.DateTimeFormat>()

function localParts(at: Date, timeZone: string): LocalParts {
  let format = formatters.get(timeZone)
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      weekday: 'short',
    })
    formatters.set(timeZone, format)
  }
  const parts: Record<string, string> = {}
  for (const part of format.formatToParts(at)) parts[part.type] = part.value
  const weekdays = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
    weekday: weekdays.indexOf(parts.weekday ?? 'Mon'),
  }
}

/** The UTC instant of local wall time y-m-d 00:00 in the zone (first instant of that day). */
function localMidnight(year: number, month: number, day: number, timeZone: string): Date {
  // Guess with the offset at noon UTC of that day, then correct once: offsets change at most
  // once around midnight, and zones never change them twice within a few hours.
  let guess = Date.UTC(year, month - 1, day, 0, 0, 0)
  for (let i = 0; i < 3; i++) {
    const p = localParts(new Date(guess), timeZone)
    const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second)
    const diff = asUtc - Date.UTC(year, month - 1, day, 0, 0, 0)
    if (diff === 0) break
    guess -= diff
  }
  return new Date(guess)
}

function startOfLocalPeriod(at: Date, period: 'day' | 'week', timeZone: string): Date {
  const p = localParts(at, timeZone)
  const back = period === 'week' ? p.weekday : 0
  const day = new Date(Date.UTC(p.year, p.month - 1, p.day - back))
  return localMidnight(day.getUTCFullYear(), day.getUTCMonth() + 1, day.getUTCDate(), timeZone)
}

function addLocalDays(at: Date, days: number, timeZone: string): Date {
  const p = localParts(at, timeZone)
  const day = new Date(Date.UTC(p.year, p.month - 1, p.day + days))
  return localMidnight(day.getUTCFullYear(), day.getUTCMonth() + 1, day.getUTCDate(), timeZone)
}
