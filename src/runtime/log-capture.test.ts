import { describe, expect, it } from 'vitest'

import { LogCapture } from './log-capture.ts'
import { REDACTED, makeRedactor } from './redact.ts'

function capture(chunks: Array<string | Buffer>, limitBytes: number, secrets: string[] = []) {
  const redactor = secrets.length > 0 ? makeRedactor(secrets) : undefined
  const log = new LogCapture(limitBytes, { redactor })
  for (const chunk of chunks) log.write(chunk)
  return log.finish()
}

/** Cuts a buffer into pieces of varying sizes (1 to 97 bytes), the same each run. */
function pieces(bytes: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let at = 0, size = 1; at < bytes.length; at += size, size = (size * 7) % 97 || 1) {
    out.push(bytes.subarray(at, at + size))
  }
  return out
}

const lines = Array.from({ length: 200 }, (_, i) => `line ${String(i).padStart(3, '0')}\n`).join('')

describe('LogCapture', () => {
  it('keeps everything under the limit', () => {
    expect(capture(['hello\n', 'world\n'], 1024)).toEqual({
      text: 'hello\nworld\n',
      bytesTotal: 12,
      bytesElided: 0,
    })
  })

  it('keeps the first and last halves and counts the middle', () => {
    const log = capture([lines], 200)
    expect(log.bytesTotal).toBe(lines.length)
    expect(log.bytesElided).toBe(lines.length - 200)
    expect(log.text.startsWith(lines.slice(0, 100))).toBe(true)
    expect(log.text.endsWith(lines.slice(-100))).toBe(true)
    expect(log.text).toContain(`\n[… ${lines.length - 200} bytes elided …]\n`)
  })

  it('gives the same text however the output was chunked', () => {
    const bytes = Buffer.from(lines)
    expect(capture(pieces(bytes), 300)).toEqual(capture([bytes], 300))
  })

  it('cuts between characters, never inside one', () => {
    const text = '€'.repeat(1000)
    const log = capture(pieces(Buffer.from(text)), 101)
    expect(log.text).not.toContain('\uFFFD')
    const [head, tail] = log.text.split(/\n?\[… \d+ bytes elided …\]\n/)
    expect(head).toMatch(/^€+$/)
    expect(tail).toMatch(/^€+$/)
    expect(Buffer.byteLength(head ?? '') + Buffer.byteLength(tail ?? '') + log.bytesElided).toBe(
      3000,
    )
  })

  it('cleans terminal sequences in the kept parts', () => {
    const log = capture(['\x1b[31mred\x1b[0m\n', 'x'.repeat(5000), '\x1b]0;title\x07end\n'], 100)
    expect(log.text.startsWith('red\n')).toBe(true)
    expect(log.text.endsWith('end\n')).toBe(true)
    expect(log.text).not.toContain('\x1b')
  })

  it('redacts a secret cut by the end of the head', () => {
    const secret = 'S3CRET-value-0123456789'
    const output = 'a'.repeat(90) + secret + 'b'.repeat(5000)
    const log = capture(pieces(Buffer.from(output)), 200, [secret])
    expect(log.text.startsWith('a'.repeat(90) + REDACTED)).toBe(true)
    expect(log.text).not.toMatch(/S3CRET|S3CR|0123/)
  })

  it('redacts a secret cut by the start of the tail', () => {
    const secret = 'S3CRET-value-0123456789'
    const output = 'a'.repeat(5000) + secret + 'b'.repeat(90)
    const log = capture(pieces(Buffer.from(output)), 200, [secret])
    expect(log.text.endsWith(REDACTED + 'b'.repeat(90))).toBe(true)
    expect(log.text).not.toMatch(/S3CRET|value|0123/)
  })

  it('redacts secrets in a log under the limit, including across lines', () => {
    const log = capture(['key: S3CRET-va', 'lue\n', 'split S3CRET\n-value\n'], 1024, [
      'S3CRET-value',
    ])
    expect(log.text).toBe(`key: ${REDACTED}\nsplit ${REDACTED}\n`)
  })

  it('keeps the first bytes for the init check', () => {
    const log = new LogCapture(1024)
    log.write('[FATAL tini (7)] exec ./run.sh failed')
    expect(log.start(12).toString()).toBe('[FATAL tini ')
  })

  it('holds 200 MB of output in fixed memory', () => {
    const log = new LogCapture(64 * 1024)
    const chunk = Buffer.alloc(64 * 1024, 'y\n')
    const before = process.memoryUsage()
    for (let i = 0; i < 3200; i++) log.write(chunk)
    const after = process.memoryUsage()
    const result = log.finish()
    expect(result.bytesTotal).toBe(3200 * 64 * 1024)
    expect(result.bytesElided).toBe(3200 * 64 * 1024 - 64 * 1024)
    expect(after.rss - before.rss).toBeLessThan(16 * 1024 * 1024)
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(1024 * 1024)
  })
})
