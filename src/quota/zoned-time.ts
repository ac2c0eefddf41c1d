import { ProctorError } from '../domain/errors.ts'

/**
 * Calendar arithmetic in an IANA time zone, with only Intl: local dates of an instant and
 * the first instant of a local day. Days are 23, 24 or 25 hours long (or other lengths in
 * zones with unusual shifts); nothing here assumes 24.
 */

export interface LocalDate {
  year: number
  /** 1–12 */
  month: number
  day: number
}

const formatters = new Map<string, Intl.DateTimeFormat>()

function formatter(timeZone: string): Intl.DateTimeFormat {
  let format = formatters.get(timeZone)
  if (!format) {
    try {
      format = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      })
    } catch (err) {
      throw new ProctorError(
        'quota_invalid',
        `quota time zone "${timeZone}" is not an IANA zone name (such as Europe/Zurich or UTC)`,
        { cause: err },
      )
    }
    formatters.set(timeZone, format)
  }
  return format
}

/** Refuses a zone name Intl does not know. */
export function assertTimeZone(timeZone: string): void {
  formatter(timeZone)
}

/** The local wall time of `at`, read as if it were UTC (milliseconds since the epoch). */
function wallClockMs(at: number, timeZone: string): number {
  const parts: Record<string, number> = {}
  for (const part of formatter(timeZone).formatToParts(new Date(at))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value)
  }
  const { year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0 } = parts
  return Date.UTC(year, month - 1, day, hour, minute, second) + (at % 1000)
}

/** The zone's offset from UTC at `at`, in milliseconds (Zurich in summer: +7,200,000). */
export function zoneOffsetMs(at: number, timeZone: string): number {
  return wallClockMs(at, timeZone) - at
}

export function localDate(at: Date, timeZone: string): LocalDate {
  const wall = new Date(wallClockMs(at.getTime(), timeZone))
  return { year: wall.getUTCFullYear(), month: wall.getUTCMonth() + 1, day: wall.getUTCDate() }
}

/** Monday = 0 … Sunday = 6, for a local date. */
export function weekdayOf(date: LocalDate): number {
  return (new Date(Date.UTC(date.year, date.month - 1, date.day)).getUTCDay() + 6) % 7
}

/** The date `days` after `date` (negative: before). Month and year carry over. */
export function addDays(date: LocalDate, days: number): LocalDate {
  const shifted = new Date(Date.UTC(date.year, date.month - 1, date.day + days))
  return {
    year: shifted.getUTCFullYear(),
    month: shifted.getUTCMonth() + 1,
    day: shifted.getUTCDate(),
  }
}

const DAY_MS = 86_400_000

/**
 * The first instant of a local day. Usually local midnight; when midnight falls in a
 * daylight-saving gap (clocks jump from 00:00 to 01:00) the day begins at the jump; when
 * midnight happens twice (clocks go back across it) the earlier one. Consecutive days thus
 * tile time with no gap and no overlap, which is all the half-open windows rely on.
 */
export function startOfLocalDay(date: LocalDate, timeZone: string): Date {
  const wall = Date.UTC(date.year, date.month - 1, date.day)
  // Offsets a day before and after bracket any shift near this midnight.
  const before = zoneOffsetMs(wall - DAY_MS, timeZone)
  const after = zoneOffsetMs(wall + DAY_MS, timeZone)
  const candidates = [...new Set([wall - before, wall - after])].sort((a, b) => a - b)
  const exact = candidates.find((t) => wallClockMs(t, timeZone) === wall)
  if (exact !== undefined) return new Date(exact)

  // Midnight does not exist: find the first instant whose local wall time is past it.
  let lo = candidates[0] ?? wall
  let hi = candidates.at(-1) ?? wall
  if (wallClockMs(hi, timeZone) < wall) hi += DAY_MS
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2)
    if (wallClockMs(mid, timeZone) >= wall) hi = mid
    else lo = mid
  }
  return new Date(hi)
}
