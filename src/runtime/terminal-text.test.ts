import { randomBytes } from 'node:crypto'

import { describe, expect, it } from 'vitest'

import {
  MAX_STRING_SEQUENCE,
  TerminalText,
  hasControlCharacters,
  toCleanText,
} from './terminal-text.ts'

function clean(text: string | Uint8Array): string {
  return toCleanText(typeof text === 'string' ? Buffer.from(text, 'utf8') : text)
}

/** Feeds the bytes in chunks cut at every position, and checks each cut gives `expected`. */
function expectEveryCut(bytes: Buffer, expected: string): void {
  for (let cut = 0; cut <= bytes.length; cut++) {
    const text = new TerminalText()
    const out = text.push(bytes.subarray(0, cut)) + text.push(bytes.subarray(cut)) + text.end()
    expect(out, `cut at ${cut}`).toBe(expected)
  }
}

/** Everything the capture promises: no controls but \n and \t, and a UTF-8 round trip. */
function expectSafe(text: string): void {
  expect(hasControlCharacters(text)).toBe(false)
  expect(Buffer.from(text, 'utf8').toString('utf8')).toBe(text)
  expect(text).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/)
}

describe('TerminalText', () => {
  it('keeps ordinary text, tabs and line breaks', () => {
    expect(clean('epoch\t1\nloss 0.5\n')).toBe('epoch\t1\nloss 0.5\n')
  })

  it('keeps a multibyte character split between chunks', () => {
    expectEveryCut(Buffer.from('accuracy ≥ 0.9 ✓ 🎉 done'), 'accuracy ≥ 0.9 ✓ 🎉 done')
  })

  it('replaces invalid bytes with U+FFFD', () => {
    expect(clean(Buffer.from([0x61, 0xff, 0x62, 0xc3]))).toBe('a\uFFFDb\uFFFD')
  })

  it('removes colours, screen clears and cursor moves', () => {
    expect(clean('\x1b[2J\x1b[31mred\x1b[0m \x1b[1;32mgreen\x1b[m\x1b[?25l\n')).toBe('red green\n')
  })

  it('removes an escape sequence split between chunks', () => {
    expectEveryCut(Buffer.from('a\x1b[38;5;196mb\x1b]0;title\x07c\x1b]8;;http://x\x1b\\d'), 'abcd')
  })

  it('removes OSC, DCS and charset sequences', () => {
    expect(clean('\x1b]0;window title\x07x\x1bP1$r0m\x1b\\y\x1b(Bz\x1b=w')).toBe('xyzw')
  })

  it('removes C0 and C1 controls and DEL but not \\n and \\t', () => {
    expect(clean('a\x00b\x07c\x08d\x7fe\u0085f\u009b31mg\t\n')).toBe('abcdefg\t\n')
  })

  it('turns \\r\\n and a lone \\r into one line break', () => {
    expect(clean(' 10%|█ |\r 20%|██|\r\ndone\r\n')).toBe(' 10%|█ |\n 20%|██|\ndone\n')
    expectEveryCut(Buffer.from('a\r\nb\rc'), 'a\nb\nc')
  })

  it('ends an unterminated OSC at a line break so later lines survive', () => {
    expect(clean('\x1b]0;never closed\nstill here\n')).toBe('\nstill here\n')
  })

  it('ends an unterminated OSC after its maximum length', () => {
    const out = clean('\x1b]' + 'x'.repeat(MAX_STRING_SEQUENCE + 10) + 'tail')
    expect(out.endsWith('tail')).toBe(true)
    expect(out.length).toBeLessThan(20)
  })

  it('gives valid text for random binary output in any chunking', () => {
    const bytes = randomBytes(64 * 1024)
    const whole = clean(bytes)
    expectSafe(whole)

    const text = new TerminalText()
    let chunked = ''
    for (let at = 0; at < bytes.length; at += 997)
      chunked += text.push(bytes.subarray(at, at + 997))
    chunked += text.end()
    expect(chunked).toBe(whole)
  })
})
