import { describe, expect, it } from 'vitest'

import { formatCursor, parseCursor } from './stream-event.ts'

describe('cursors', () => {
  it('reads a timeline id alone, or a timeline id and a log id', () => {
    expect(parseCursor('57')).toEqual({ event: 57, log: 0 })
    expect(parseCursor(' 57.3 ')).toEqual({ event: 57, log: 3 })
  })

  it('refuses anything else', () => {
    for (const text of ['', 'abc', '-1', '1.2.3', '1e3', '57.', '9'.repeat(16)]) {
      expect(parseCursor(text)).toBeNull()
    }
  })

  it('writes the log id only on streams that carry logs', () => {
    expect(formatCursor({ event: 8, log: 2 }, true)).toBe('8.2')
    expect(formatCursor({ event: 8, log: 2 }, false)).toBe('8')
  })
})
