import { describe, expect, it } from 'vitest'

import { parseWindow, releaseTime, windowBounds, type QuotaWindow } from './window.ts'

const HOUR = 3_600_000

function at(text: string): Date {
  return new Date(text)
}

function periodHours(window: QuotaWindow, now: string): number {
  const { start, end } = windowBounds(window, at(now))
  return ((end?.getTime() ?? Number.NaN) - start.getTime()) / HOUR
}

describe('parseWindow', () => {
  it('reads rolling windows in minutes, hours and days, 24 h by default', () => {
    expect(parseWindow({})).toEqual({ kind: 'rolling', ms: 24 * HOUR })
    expect(parseWindow({ window: '90m' })).toEqual({ kind: 'rolling', ms: 90 * 60_000 })
    expect(parseWindow({ window: '7d' })).toEqual({ kind: 'rolling', ms: 7 * 24 * HOUR })
  })

  it('reads calendar periods with their zone', () => {
    expect(parseWindow({ period: 'week', timeZone: 'Europe/Zurich' })).toEqual({
      kind: 'calendar',
      period: 'week',
      timeZone: 'Europe/Zurich',
    })
  })

  it('refuses a zero window and an unknown time zone, naming the value', () => {
    expect(() => parseWindow({ window: '0h' })).toThrow('quota window "0h"')
    expect(() => parseWindow({ period: 'day', timeZone: 'Europe/Atlantis' })).toThrow(
      'quota time zone "Europe/Atlantis" is not an IANA zone name',
    )
  })
})

describe('rolling windows', () => {
  const day = parseWindow({ window: '24h' })

  it('count (t − 24 h, t]: a unit charged exactly 24 h ago no longer counts', () => {
    const bounds = windowBounds(day, at('2024-03-11T23:50:00Z'))

    expect(bounds).toEqual({ start: at('2024-03-10T23:50:00Z'), startInclusive: false })
  })

  it('free a unit exactly one window after it was charged, across a DST change', () => {
    expect(releaseTime(day, at('2024-03-10T23:50:00Z'))).toEqual(at('2024-03-11T23:50:00Z'))
    expect(releaseTime(day, at('2024-03-30T12:00:00Z'))).toEqual(at('2024-03-31T12:00:00Z'))
  })
})

describe('calendar days', () => {
  it('in UTC run from midnight to midnight, start included', () => {
    const utc = parseWindow({ period: 'day', timeZone: 'UTC' })

    expect(windowBounds(utc, at('2024-03-11T00:05:00Z'))).toEqual({
      start: at('2024-03-11T00:00:00Z'),
      startInclusive: true,
      end: at('2024-03-12T00:00:00Z'),
    })
    expect(windowBounds(utc, at('2024-03-11T00:00:00Z')).start).toEqual(at('2024-03-11T00:00:00Z'))
    expect(releaseTime(utc, at('2024-03-10T23:59:59.999Z'))).toEqual(at('2024-03-11T00:00:00Z'))
  })

  it('in Europe/Zurich last 23 h on 2024-03-31 and 25 h on 2024-10-27', () => {
    const zurich = parseWindow({ period: 'day', timeZone: 'Europe/Zurich' })

    expect(windowBounds(zurich, at('2024-03-31T00:30:00Z'))).toEqual({
      start: at('2024-03-30T23:00:00Z'),
      startInclusive: true,
      end: at('2024-03-31T22:00:00Z'),
    })
    expect(periodHours(zurich, '2024-03-31T00:30:00Z')).toBe(23)
    expect(periodHours(zurich, '2024-10-27T12:00:00Z')).toBe(25)
    expect(periodHours(zurich, '2024-10-27T01:30:00Z')).toBe(25)
    expect(periodHours(zurich, '2024-06-01T12:00:00Z')).toBe(24)
  })

  it('tile time around a DST change: each day ends where the next begins', () => {
    const zurich = parseWindow({ period: 'day', timeZone: 'Europe/Zurich' })

    expect(windowBounds(zurich, at('2024-03-30T22:59:59.999Z')).end).toEqual(
      at('2024-03-30T23:00:00Z'),
    )
    expect(windowBounds(zurich, at('2024-03-31T22:00:00Z')).start).toEqual(
      at('2024-03-31T22:00:00Z'),
    )
    expect(windowBounds(zurich, at('2024-10-27T22:59:59.999Z')).start).toEqual(
      at('2024-10-26T22:00:00Z'),
    )
    expect(windowBounds(zurich, at('2024-10-27T23:00:00Z')).start).toEqual(
      at('2024-10-27T23:00:00Z'),
    )
  })
})

describe('calendar weeks', () => {
  it('start on Monday at local midnight and hold a DST change', () => {
    const zurich = parseWindow({ period: 'week', timeZone: 'Europe/Zurich' })

    // Sunday 2024-03-31 23:30 local (CEST) belongs to the week of Monday 2024-03-25.
    expect(windowBounds(zurich, at('2024-03-31T21:30:00Z'))).toEqual({
      start: at('2024-03-24T23:00:00Z'),
      startInclusive: true,
      end: at('2024-03-31T22:00:00Z'),
    })
    expect(periodHours(zurich, '2024-03-27T12:00:00Z')).toBe(167)
  })

  it('in UTC run Monday 00:00 to Monday 00:00', () => {
    const utc = parseWindow({ period: 'week', timeZone: 'UTC' })

    expect(windowBounds(utc, at('2024-03-10T23:50:00Z'))).toMatchObject({
      start: at('2024-03-04T00:00:00Z'),
      end: at('2024-03-11T00:00:00Z'),
    })
    expect(windowBounds(utc, at('2024-03-11T00:00:00Z')).start).toEqual(at('2024-03-11T00:00:00Z'))
  })
})
