import { describe, expect, it } from 'vitest'

import { matchesAnyHmac, matchesAnySecret } from './forges/adapter.ts'
import { classifyRef, isSafeProjectPath, isValidTagName } from './forge-event.ts'

describe('forge events', () => {
  it.each([
    ['alice/flower-classification', true],
    ['group/sub/project.name_1', true],
    ['alice', true],
    ['../etc', false],
    ['alice/..', false],
    ['alice/.hidden', false],
    ['alice/-x', false],
    ['alice/x.git', false],
    ['alice//x', false],
    ['alice/x y', false],
    ['', false],
  ])('judges project path %j safe: %s', (path, expected) => {
    expect(isSafeProjectPath(path)).toBe(expected)
  })

  it.each([
    ['v1', true],
    ['submission/round-2', true],
    ['v1..2', false],
    ['-v', false],
    ['v1.lock', false],
    ['a b', false],
    ['a~1', false],
    ['x@{1}', false],
    ['.hidden', false],
    ['v1/', false],
    ['', false],
  ])('judges tag %j valid: %s', (tag, expected) => {
    expect(isValidTagName(tag)).toBe(expected)
  })

  it('classifies refs the same way for every forge', () => {
    const sha = 'a'.repeat(40)
    expect(classifyRef('refs/tags/v1', sha, false)).toEqual({ kind: 'tag', tag: 'v1' })
    expect(classifyRef('refs/tags/v1', '0'.repeat(40), false)).toMatchObject({
      eventKind: 'tag_deletion',
    })
    expect(classifyRef('refs/tags/v1', sha, true)).toMatchObject({ eventKind: 'tag_deletion' })
    expect(classifyRef('refs/heads/main', sha, false)).toMatchObject({ eventKind: 'push' })
    expect(classifyRef('refs/notes/x', sha, false)).toMatchObject({ kind: 'ignored' })
  })

  it('matches a token against any of several secrets, and nothing else', () => {
    expect(matchesAnySecret('two', ['one', 'two'])).toBe(true)
    expect(matchesAnySecret('tw', ['one', 'two'])).toBe(false)
    expect(matchesAnySecret('', ['one'])).toBe(false)
  })

  it("verifies GitHub's published HMAC test vector", () => {
    const body = Buffer.from('Hello, World!')
    const hex = '757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17'
    expect(matchesAnyHmac(body, hex, ['other', "It's a Secret to Everybody"])).toBe(true)
    expect(matchesAnyHmac(body, hex, ['other'])).toBe(false)
    expect(matchesAnyHmac(body, hex.slice(2), ["It's a Secret to Everybody"])).toBe(false)
  })
})
