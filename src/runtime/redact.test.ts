import { describe, expect, it } from 'vitest'

import { REDACTED, makeRedactor } from './redact.ts'

const SECRET = 'hunter2-Sup3r/S3cret+token'

describe('makeRedactor', () => {
  const redactor = makeRedactor([SECRET])

  it('replaces the plain value', () => {
    expect(redactor.redact(`token=${SECRET}; again ${SECRET}.`)).toBe(
      `token=${REDACTED}; again ${REDACTED}.`,
    )
  })

  it('leaves text without secrets unchanged', () => {
    const text = 'epoch 3: loss 0.25\nhunter2 is not the whole secret\n'
    expect(redactor.redact(text)).toBe(text)
  })

  it.each(['', 'a', 'ab', 'abc', 'Authorization: Basic '])(
    'replaces the base64 form after a %j prefix, whatever follows',
    (prefix) => {
      for (const suffix of ['', 'x', 'xy', ':more bytes']) {
        const encoded = Buffer.from(prefix + SECRET + suffix).toString('base64')
        // Only the characters that mix the secret's bits with its neighbours' stay.
        const from = Math.ceil((8 * prefix.length) / 6)
        const to = Math.floor((8 * (prefix.length + SECRET.length)) / 6)
        expect(redactor.redact(`header ${encoded} end`)).toBe(
          `header ${encoded.slice(0, from)}${REDACTED}${encoded.slice(to)} end`,
        )
      }
    },
  )

  it('replaces the URL-safe base64 form', () => {
    const encoded = Buffer.from('x' + SECRET).toString('base64url')
    expect(redactor.redact(encoded)).toContain(REDACTED)
  })

  it('replaces the hex forms in both cases', () => {
    const hex = Buffer.from(SECRET).toString('hex')
    expect(redactor.redact(`a ${hex} b ${hex.toUpperCase()} c`)).toBe(
      `a ${REDACTED} b ${REDACTED} c`,
    )
  })

  it('replaces a value printed with a line break in the middle', () => {
    const [first, second] = [SECRET.slice(0, 9), SECRET.slice(9)]
    expect(redactor.redact(`${first}\n${second}\n`)).toBe(`${REDACTED}\n`)
    expect(redactor.redact(`${first}\r\n${second}`)).toBe(REDACTED)
  })

  it('replaces wrapped base64 (76 columns, as MIME and `base64` print it)', () => {
    const long = makeRedactor(['k'.repeat(40) + SECRET])
    const wrapped = Buffer.from('k'.repeat(40) + SECRET)
      .toString('base64')
      .replace(/.{76}/g, '$&\n')
    expect(long.redact(wrapped)).toMatch(/^\[redacted\].{0,2}$/s)
  })

  it('replaces every secret of several, the longest form first', () => {
    const both = makeRedactor(['abcdefgh', 'abcdefgh-longer'])
    expect(both.redact('abcdefgh-longer abcdefgh')).toBe(`${REDACTED} ${REDACTED}`)
  })

  it('ignores secrets too short to tell from ordinary text', () => {
    const short = makeRedactor(['abc', ''])
    expect(short.maxLength).toBe(0)
    expect(short.redact('abc abc')).toBe('abc abc')
  })

  it('reports spans in order without overlap', () => {
    const text = `${SECRET}..${SECRET}`
    expect(redactor.findSpans(text)).toEqual([
      { start: 0, end: SECRET.length },
      { start: SECRET.length + 2, end: 2 * SECRET.length + 2 },
    ])
  })
})

describe('makeRedactor(…).stream()', () => {
  const redactor = makeRedactor([SECRET])

  function runStream(chunks: string[]): string {
    const stream = redactor.stream()
    return chunks.map((chunk) => stream.push(chunk)).join('') + stream.end()
  }

  it('catches a value split between two chunks at every position', () => {
    const text = `before ${SECRET} after\n`
    for (let cut = 0; cut <= text.length; cut++) {
      expect(runStream([text.slice(0, cut), text.slice(cut)])).toBe(`before ${REDACTED} after\n`)
    }
  })

  it('catches a value split across lines and chunks', () => {
    const text = `x ${SECRET.slice(0, 5)}\n${SECRET.slice(5)} y`
    for (let cut = 0; cut <= text.length; cut++) {
      expect(runStream([text.slice(0, cut), text.slice(cut)])).toBe(`x ${REDACTED} y`)
    }
  })

  it('handles one character at a time', () => {
    const text = `a${SECRET}b${Buffer.from(SECRET).toString('hex')}c`
    expect(runStream(Array.from(text))).toBe(`a${REDACTED}b${REDACTED}c`)
  })

  it('holds back less than the longest match', () => {
    const stream = redactor.stream()
    const out = stream.push('z'.repeat(1000))
    expect(out.length).toBeGreaterThan(1000 - redactor.maxLength)
    expect(out + stream.end()).toBe('z'.repeat(1000))
  })
})
