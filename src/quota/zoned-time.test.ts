import { describe, expect, it } from 'vitest'

import { addDays, localDate, startOfLocalDay, weekdayOf, zoneOffsetMs } from './zoned-time.ts'

describe('zoned time', () => {
  it('reads the local date of an instant in a zone', () => {
    const instant = new Date('2024-03-30T23:30:00Z')

    expect(localDate(instant, 'UTC')).toEqual({ year: 2024, month: 3, day: 30 })
    expect(localDate(instant, 'Europe/Zurich')).toEqual({ year: 2024, month: 3, day: 31 })
    expect(localDate(instant, 'America/New_York')).toEqual({ year: 2024, month: 3, day: 30 })
  })

  it('knows the offset on both sides of a change', () => {
    expect(zoneOffsetMs(Date.parse('2024-03-31T00:59:59Z'), 'Europe/Zurich')).toBe(3_600_000)
    expect(zoneOffsetMs(Date.parse('2024-03-31T01:00:00Z'), 'Europe/Zurich')).toBe(7_200_000)
  })

  it('starts a day at the jump when local midnight does not exist', () => {
    // Santiago moves from 00:00 to 01:00 on 2024-09-08 (UTC−4 to UTC−3).
    const start = startOfLocalDay({ year: 2024, month: 9, day: 8 }, 'America/Santiago')

    expect(start).toEqual(new Date('2024-09-08T04:00:00Z'))
    expect(localDate(new Date(start.getTime() - 1), 'America/Santiago').day).toBe(7)
  })

  it('counts weekdays from Monday and carries days over months', () => {
    expect(weekdayOf({ year: 2024, month: 3, day: 25 })).toBe(0)
    expect(weekdayOf({ year: 2024, month: 3, day: 31 })).toBe(6)
    expect(addDays({ year: 2024, month: 3, day: 31 }, 1)).toEqual({ year: 2024, month: 4, day: 1 })
    expect(addDays({ year: 2024, month: 1, day: 1 }, -1)).toEqual({
      year: 2023,
      month: 12,
      day: 31,
    })
  })
})
