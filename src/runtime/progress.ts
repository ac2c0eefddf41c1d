import { toCleanText } from './terminal-text.ts'

/**
 * Progress lines an organizer's program prints: `PROCTOR_PROGRESS <fraction> [message]`, the
 * fraction from 0 to 1. Read from raw output bytes, line by line; a line longer than
 * MAX_PROGRESS_LINE bytes is not a progress line and costs no memory beyond that.
 *
 *   print(f"PROCTOR_PROGRESS {done / total:.3f} scored {done} of {total} images", flush=True)
 */
export const MAX_PROGRESS_LINE = 1024
export const MAX_PROGRESS_MESSAGE = 200

const PREFIX = Buffer.from('PROCTOR_PROGRESS')
const LINE = /^PROCTOR_PROGRESS[ \t]+([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)(?:[ \t]+(.*))?$/
const NEWLINE = 0x0a

export interface Progress {
  readonly fraction: number
  readonly message: string
}

/** Parses one line (without its line break); null when it is not a valid progress line. */
export function parseProgressLine(line: string): Progress | null {
  const match = LINE.exec(line.trimEnd())
  if (!match) return null
  const fraction = Number(match[1])
  if (!Number.isFinite(fraction) || fraction < 0 || fraction > 1) return null
  return { fraction, message: (match[2] ?? '').trim().slice(0, MAX_PROGRESS_MESSAGE) }
}

/** Splits one output stream into lines and reports the progress lines. */
export class ProgressScanner {
  readonly #onProgress: (progress: Progress) => void
  readonly #line = Buffer.allocUnsafe(MAX_PROGRESS_LINE)
  #length = 0
  #overflowed = false

  constructor(onProgress: (progress: Progress) => void) {
    this.#onProgress = onProgress
  }

  push(chunk: Buffer): void {
    let at = 0
    while (at < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, at)
      const end = newline === -1 ? chunk.length : newline
      this.#append(chunk.subarray(at, end))
      if (newline === -1) return
      this.#endLine()
      at = newline + 1
    }
  }

  end(): void {
    this.#endLine()
  }

  #append(bytes: Buffer): void {
    if (this.#overflowed) return
    if (this.#length + bytes.length > MAX_PROGRESS_LINE) {
      this.#overflowed = true
      return
    }
    bytes.copy(this.#line, this.#length)
    this.#length += bytes.length
  }

  #endLine(): void {
    const line = this.#line.subarray(0, this.#length)
    const candidate = !this.#overflowed && line.subarray(0, PREFIX.length).equals(PREFIX)
    this.#length = 0
    this.#overflowed = false
    if (!candidate) return
    const progress = parseProgressLine(toCleanText(line))
    if (progress) this.#onProgress(progress)
  }
}
