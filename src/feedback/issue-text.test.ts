import { describe, expect, it } from 'vitest'

import { code, fence, formatDuration, tailLines } from './issue-text.ts'

describe('issue text helpers', () => {
  it('fences any text with more backticks than it contains', () => {
    expect(fence('plain')).toBe('```\nplain\n```')
    expect(fence('has ``` inside', 'text')).toBe('````text\nhas ``` inside\n````')
  })

  it('keeps inline code on one line and padded when it starts with a backtick', () => {
    expect(code('v1.0')).toBe('`v1.0`')
    expect(code('`tick`')).toBe('`` `tick` ``')
    expect(code('two\nlines')).toBe('`two lines`')
  })

  it('shows durations and log tails the way people read them', () => {
    expect([formatDuration(850), formatDuration(12_345), formatDuration(62_000)]).toEqual([
      '850 ms',
      '12.3 s',
      '1 min 2 s',
    ])
    expect(tailLines('a\nb\nc\n\n', 2)).toBe('b\nc')
  })
})
