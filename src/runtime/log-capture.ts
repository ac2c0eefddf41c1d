import type { CapturedLog } from './container-runtime.ts'
import { type Redactor, REDACTED, type Span } from './redact.ts'
import { TerminalText } from './terminal-text.ts'

/**
 * A capped capture of a program's output: keeps the first and last halves of `limitBytes` of
 * the raw bytes and counts the rest. Memory is fixed at creation (`limitBytes` plus two margins)
 * whatever the program writes; each chunk costs one or two copies, so a fast writer is not
 * slowed down by the capture.
 *
 * Decoding, cleaning (terminal-text.ts) and redaction happen once, in `finish`, on the kept
 * bytes. To redact a secret cut by the head's end or the tail's start, each part keeps a margin
 * of raw bytes beyond its cut (4 bytes per character of the longest match) and is redacted
 * with it; the margin itself is never shown.
 *
 *   const capture = new LogCapture(256 * 1024, { redactor })
 *   stream.on('data', (chunk) => capture.write(chunk))
 *   const { text, bytesTotal, bytesElided } = capture.finish()
 */
export class LogCapture {
  readonly #limit: number
  readonly #margin: number
  readonly #redactor: Redactor | undefined
  readonly #head: Buffer
  #headLength = 0
  readonly #ring: Buffer
  #ringEnd = 0
  #ringLength = 0
  #total = 0

  constructor(limitBytes: number, options: { redactor?: Redactor } = {}) {
    this.#limit = limitBytes
    this.#redactor = options.redactor
    // Enough raw bytes for the longest match in 4-byte characters.
    this.#margin = 4 * (options.redactor?.maxLength ?? 0)
    const half = Math.floor(this.#limit / 2)
    // Three bytes more than the head can show: where a character starts is read from them.
    this.#head = Buffer.allocUnsafe(half + this.#margin + 3)
    this.#ring = Buffer.allocUnsafe(this.#limit - half + this.#margin)
  }

  get bytesTotal(): number {
    return this.#total
  }

  /** The first bytes written, up to `length` (what an init prints when it cannot exec). */
  start(length: number): Buffer {
    return this.#head.subarray(0, Math.min(length, this.#headLength))
  }

  /** Text is written as UTF-8 (a build tool's decoded lines). */
  write(chunk: Uint8Array | string): void {
    if (typeof chunk === 'string') chunk = Buffer.from(chunk, 'utf8')
    if (this.#headLength < this.#head.length) {
      const take = Math.min(this.#head.length - this.#headLength, chunk.length)
      this.#head.set(chunk.subarray(0, take), this.#headLength)
      this.#headLength += take
    }
    this.#pushRing(chunk)
    this.#total += chunk.length
  }

  finish(): CapturedLog {
    const redactor = this.#redactor
    const total = this.#total
    if (total <= this.#limit) {
      const text = new TerminalText()
      const whole = text.push(this.#range(0, total)) + text.end()
      return { text: redactor ? redactor.redact(whole) : whole, bytesTotal: total, bytesElided: 0 }
    }

    const half = Math.floor(this.#limit / 2)
    const headCut = snapBack(this.#head, half)
    const tailStart = total - (this.#limit - half)
    const tailCut = tailStart + continuationBytes(this.#range(tailStart, tailStart + 3))
    const headText = this.#headText(headCut, redactor)
    const tailText = this.#tailText(tailCut, redactor)
    const elided = tailCut - headCut
    const join = headText.endsWith('\n') || headText === '' ? '' : '\n'
    return {
      text: `${headText}${join}[… ${elided} bytes elided …]\n${tailText}`,
      bytesTotal: total,
      bytesElided: elided,
    }
  }

  #headText(cut: number, redactor: Redactor | undefined): string {
    const text = new TerminalText()
    const kept = text.push(this.#range(0, cut))
    if (!redactor) return kept
    const context = kept + text.push(this.#range(cut, cut + this.#margin)) + text.end()
    return keepBefore(context, kept.length, redactor.findSpans(context))
  }

  #tailText(cut: number, redactor: Redactor | undefined): string {
    const text = new TerminalText()
    const from = Math.max(0, cut - this.#margin)
    // Even without a redactor, the bytes before the cut are read: they may open an escape
    // sequence or a character that the tail's first bytes finish.
    const before = text.push(this.#range(from, cut))
    const kept = text.push(this.#range(cut, this.#total)) + text.end()
    if (!redactor) return kept
    const context = before + kept
    return keepFrom(context, before.length, redactor.findSpans(context))
  }

  #pushRing(chunk: Uint8Array): void {
    const size = this.#ring.length
    if (size === 0) return
    if (chunk.length >= size) {
      this.#ring.set(chunk.subarray(chunk.length - size))
      this.#ringEnd = 0
      this.#ringLength = size
      return
    }
    const first = Math.min(size - this.#ringEnd, chunk.length)
    this.#ring.set(chunk.subarray(0, first), this.#ringEnd)
    this.#ring.set(chunk.subarray(first), 0)
    this.#ringEnd = (this.#ringEnd + chunk.length) % size
    this.#ringLength = Math.min(size, this.#ringLength + chunk.length)
  }

  /** Bytes [start, end) of the stream; the range must lie in the head or in the ring. */
  #range(start: number, end: number): Buffer {
    end = Math.min(end, this.#total)
    if (end <= start) return Buffer.alloc(0)
    if (end <= this.#headLength) return this.#head.subarray(start, end)

    const ringStart = this.#total - this.#ringLength
    if (start < ringStart) {
      // Only reached when the whole stream fits in head and ring together.
      return Buffer.concat([this.#head.subarray(start, ringStart), this.#range(ringStart, end)])
    }
    const size = this.#ring.length
    const from = (this.#ringEnd - (this.#total - start) + 2 * size) % size
    const length = end - start
    if (from + length <= size) return this.#ring.subarray(from, from + length)
    return Buffer.concat([this.#ring.subarray(from), this.#ring.subarray(0, from + length - size)])
  }
}

/** Backs a cut up to the start of a UTF-8 character (at most 3 bytes). */
function snapBack(bytes: Buffer, cut: number): number {
  let at = cut
  while (at > cut - 3 && at > 0 && isContinuation(bytes[at])) at--
  return at
}

/** How many bytes to move a cut forward to reach the start of a UTF-8 character. */
function continuationBytes(bytes: Buffer): number {
  let at = 0
  while (at < bytes.length && isContinuation(bytes[at])) at++
  return at
}

function isContinuation(byte: number | undefined): boolean {
  return byte !== undefined && (byte & 0xc0) === 0x80
}

/** `text` up to `cut`, redacted; a match across the cut is replaced whole. */
function keepBefore(text: string, cut: number, spans: readonly Span[]): string {
  let out = ''
  let pos = 0
  for (const span of spans) {
    if (span.start >= cut) break
    out += text.slice(pos, span.start) + REDACTED
    pos = span.end
  }
  return pos < cut ? out + text.slice(pos, cut) : out
}

/** `text` from `cut` on, redacted; a match across the cut is replaced whole. */
function keepFrom(text: string, cut: number, spans: readonly Span[]): string {
  let out = ''
  let pos = cut
  for (const span of spans) {
    if (span.end <= cut) continue
    out += text.slice(pos, Math.max(pos, span.start)) + REDACTED
    pos = span.end
  }
  return out + text.slice(pos)
}
