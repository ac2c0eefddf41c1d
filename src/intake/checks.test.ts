import { describe, expect, it } from 'vitest'

import { describeWindow, matchesTagPattern, nameMismatch } from './checks.ts'

describe('intake checks', () => {
  it.each([
    ['v1', '*', true],
    ['round1/final', '*', true],
    ['submission-3', 'submission-*', true],
    ['v1', 'submission-*', false],
    ['v12', 'v?', false],
    ['v1', 'v?', true],
    ['a.b', 'a.b', true],
    ['axb', 'a.b', false],
    ['(x)', '(x)', true],
  ])('matches tag %s against %s: %s', (tag, pattern, expected) => {
    expect(matchesTagPattern(tag, pattern)).toBe(expected)
  })

  it('compares the repository name with the challenge id ignoring case', () => {
    expect(nameMismatch('alice/Flower-Classification', 'flower-classification')).toBeNull()
    expect(nameMismatch('group/sub/flowers', 'flower-classification')).toBe(
      'the repository is named "flowers" but crowdai.json names challenge "flower-classification"; they must be the same (case does not matter)',
    )
  })

  it.each([
    [{ kind: 'rolling', ms: 86_400_000 } as const, 'the 24 h window'],
    [{ kind: 'rolling', ms: 7 * 86_400_000 } as const, 'the 7 d window'],
    [{ kind: 'rolling', ms: 90 * 60_000 } as const, 'the 90 min window'],
    [
      { kind: 'calendar', period: 'day', timeZone: 'Europe/Paris' } as const,
      'the calendar day (Europe/Paris)',
    ],
  ])('describes %o as %s', (window, words) => {
    expect(describeWindow(window)).toBe(words)
  })
})
