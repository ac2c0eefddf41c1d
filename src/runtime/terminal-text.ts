/**
 * Turns a program's raw output into text that is safe to store and show: valid UTF-8 (invalid
 * bytes become U+FFFD), without terminal control sequences. It is a stream: a character or an
 * escape sequence split between two chunks is handled as if it had arrived whole.
 *
 * Removed: CSI sequences (`ESC [ … final`, colours, cursor moves, screen clears), OSC and the
 * other string sequences (`ESC ] … BEL|ESC \`, window titles, hyperlinks), other `ESC`
 * sequences, the C1 controls U+0080–U+009F, DEL, and every C0 control except `\n` and `\t`.
 * A lone `\r` becomes `\n`, so a progress bar redrawn with `\r` reads as one line per redraw;
 * `\r\n` becomes `\n`.
 *
 * A string sequence ends at BEL, ST, a line break or MAX_STRING_SEQUENCE characters, so a
 * stray `ESC ]` in binary output cannot swallow the rest of the log.
 */

export const MAX_STRING_SEQUENCE = 1024
const MAX_CSI_SEQUENCE = 64

type State = 'text' | 'escape' | 'csi' | 'string' | 'string-escape'

const ESC = 0x1b
const BEL = 0x07
const LF = 0x0a
const CR = 0x0d
const TAB = 0x09

/** Characters that need the slow path; everything else is copied as it is. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const SPECIAL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/

export class TerminalText {
  readonly #decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true })
  #state: State = 'text'
  #sequenceLength = 0
  #pendingCr = false

  /** Decodes and cleans one chunk; returns the text that is final so far. */
  push(bytes: Uint8Array): string {
    return this.#clean(this.#decoder.decode(bytes, { stream: true }))
  }

  /** Ends the stream: an incomplete character becomes U+FFFD, an open sequence is dropped. */
  end(): string {
    const text = this.#clean(this.#decoder.decode())
    const tail = this.#pendingCr ? '\n' : ''
    this.#state = 'text'
    this.#pendingCr = false
    return text + tail
  }

  #clean(text: string): string {
    if (this.#state === 'text' && !this.#pendingCr && !SPECIAL.test(text)) return text

    let out = ''
    let runStart = 0
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i)
      if (this.#state === 'text') {
        if (this.#pendingCr) {
          this.#pendingCr = false
          // `\r\n` is one line break; a lone `\r` is one too.
          if (code !== LF) out += '\n'
        }
        if (!isSpecial(code)) continue
        out += text.slice(runStart, i)
        runStart = i + 1
        if (code === CR) this.#pendingCr = true
        else if (code === ESC) this.#begin('escape')
        else if (code === 0x9b) this.#begin('csi')
        else if (
          code === 0x90 ||
          code === 0x98 ||
          code === 0x9d ||
          code === 0x9e ||
          code === 0x9f
        ) {
          this.#begin('string')
        }
        continue
      }

      // Inside a sequence: every character is dropped, and some end the sequence.
      runStart = i + 1
      this.#sequenceLength++
      if (this.#step(code)) continue
      // The character cannot belong to the sequence: it ends it and is read again as text.
      this.#state = 'text'
      runStart = i
      i--
    }
    if (this.#state === 'text') out += text.slice(runStart)
    return out
  }

  /** Advances a sequence by one character; false when the character is not part of it. */
  #step(code: number): boolean {
    switch (this.#state) {
      case 'escape':
        if (code === 0x5b) this.#begin('csi')
        else if (
          code === 0x5d ||
          code === 0x50 ||
          code === 0x58 ||
          code === 0x5e ||
          code === 0x5f
        ) {
          this.#begin('string')
        } else if (code >= 0x30 && code <= 0x7e) this.#state = 'text'
        // An intermediate byte (`ESC ( B`) continues the sequence; anything else ends it.
        else if (code < 0x20 || code > 0x2f || this.#sequenceLength > MAX_CSI_SEQUENCE) return false
        return true
      case 'csi':
        if (code >= 0x40 && code <= 0x7e) this.#state = 'text'
        else if (code < 0x20 || code > 0x3f || this.#sequenceLength > MAX_CSI_SEQUENCE) return false
        return true
      case 'string':
        if (code === BEL || code === 0x9c) this.#state = 'text'
        else if (code === ESC) this.#state = 'string-escape'
        else if (code === LF || this.#sequenceLength > MAX_STRING_SEQUENCE) return false
        return true
      case 'string-escape':
        // `ESC \` is the string terminator; any other `ESC x` starts a new sequence.
        if (code === 0x5c) {
          this.#state = 'text'
          return true
        }
        this.#begin('escape')
        return this.#step(code)
      case 'text':
        return false
    }
  }

  #begin(state: State): void {
    this.#state = state
    this.#sequenceLength = 0
  }
}

/** Whether a text holds a control character other than `\n` and `\t` (cleaned text never does). */
export function hasControlCharacters(text: string): boolean {
  return SPECIAL.test(text)
}

function isSpecial(code: number): boolean {
  return (code < 0x20 && code !== LF && code !== TAB) || (code >= 0x7f && code <= 0x9f)
}

/** Cleans a complete byte string in one go. */
export function toCleanText(bytes: Uint8Array): string {
  const text = new TerminalText()
  return text.push(bytes) + text.end()
}
