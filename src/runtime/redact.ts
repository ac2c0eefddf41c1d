/**
 * Redaction of known secrets in logs: a safety net against a grader or build step printing a
 * credential by accident. It is not a defence against a program that means to leak one: a
 * secret printed reversed, spaced out or encoded some other way passes through. Keep secrets
 * away from participant phases instead.
 *
 * Each secret is matched in these forms:
 * - its plain value;
 * - its base64 (standard and URL-safe alphabets) as it appears inside a longer base64 text at
 *   each of the three byte offsets: only the characters that depend on the secret's bytes
 *   alone, so `base64(prefix + secret + suffix)` is caught whatever the prefix and suffix;
 * - its UTF-8 bytes in hex, lower and upper case;
 * - any of these with line breaks (`\n` or `\r\n`) between characters, as when a value is
 *   printed in two parts or wrapped.
 *
 * A secret shorter than MIN_SECRET_LENGTH characters, and any form shorter than that, is not
 * matched: it would redact ordinary words.
 */

export const REDACTED = '[redacted]'

export const MIN_SECRET_LENGTH = 4

/** A matched range in a text: `text.slice(start, end)` is a secret in one of its forms. */
export interface Span {
  readonly start: number
  readonly end: number
}

export interface Redactor {
  /** Replaces every match in a complete text. */
  redact(text: string): string
  /** The matches in a text, in order and not overlapping. */
  findSpans(text: string): Span[]
  /** The longest text a match can cover, in UTF-16 code units (0 with no secrets). */
  readonly maxLength: number
  /** A redactor for a text that arrives in chunks: a match split between chunks is caught. */
  stream(): StreamRedactor
}

export interface StreamRedactor {
  /** Returns the text that is final so far; holds back at most `maxLength - 1` characters. */
  push(chunk: string): string
  /** Returns the rest. */
  end(): string
}

export function makeRedactor(secrets: readonly string[]): Redactor {
  const forms = [...new Set(secrets.flatMap(secretForms))]
    .filter((form) => form.length >= MIN_SECRET_LENGTH)
    // Alternatives are tried in order: the longest first, so a form that contains another wins.
    .sort((a, b) => b.length - a.length)
  if (forms.length === 0) return NO_SECRETS

  const pattern = new RegExp(forms.map(lineBreakTolerant).join('|'), 'g')
  const longest = forms[0]?.length ?? 0
  // Up to two characters (`\r\n`) between each pair of characters.
  const maxLength = longest + 2 * (longest - 1)

  function findSpans(text: string): Span[] {
    const spans: Span[] = []
    for (const match of text.matchAll(pattern)) {
      spans.push({ start: match.index, end: match.index + match[0].length })
    }
    return spans
  }

  return {
    maxLength,
    findSpans,
    redact: (text) => replaceSpans(text, findSpans(text)),
    stream: () => streamRedactor(findSpans, maxLength),
  }
}

/** Rebuilds `text` with each span replaced by REDACTED. */
export function replaceSpans(text: string, spans: readonly Span[]): string {
  let out = ''
  let pos = 0
  for (const span of spans) {
    out += text.slice(pos, span.start) + REDACTED
    pos = span.end
  }
  return out + text.slice(pos)
}

const NO_SECRETS: Redactor = {
  maxLength: 0,
  findSpans: () => [],
  redact: (text) => text,
  stream: () => ({ push: (chunk) => chunk, end: () => '' }),
}

function streamRedactor(findSpans: (text: string) => Span[], maxLength: number): StreamRedactor {
  let pending = ''
  return {
    push(chunk) {
      pending += chunk
      // A match that starts before `safe` ends within `pending`: it is final. One that starts
      // later may still grow with the next chunk, so that text waits.
      const safe = pending.length - (maxLength - 1)
      if (safe <= 0) return ''
      let out = ''
      let pos = 0
      for (const span of findSpans(pending)) {
        if (span.start >= safe) break
        out += pending.slice(pos, span.start) + REDACTED
        pos = span.end
      }
      const emitTo = Math.max(pos, safe)
      out += pending.slice(pos, emitTo)
      pending = pending.slice(emitTo)
      return out
    },
    end() {
      const out = replaceSpans(pending, findSpans(pending))
      pending = ''
      return out
    },
  }
}

function secretForms(secret: string): string[] {
  if (secret.length < MIN_SECRET_LENGTH) return []
  const bytes = Buffer.from(secret, 'utf8')
  const hex = bytes.toString('hex')
  return [secret, ...base64Forms(bytes), hex, hex.toUpperCase()]
}

/**
 * base64 turns each 3 bytes into 4 characters of 6 bits. Preceded by `offset` bytes, the
 * secret's bits start at bit 8·offset; the characters whose 6 bits all come from the secret
 * are the same whatever surrounds it.
 */
function base64Forms(bytes: Buffer): string[] {
  const forms: string[] = []
  for (const offset of [0, 1, 2]) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64')
    const first = Math.ceil((8 * offset) / 6)
    const end = Math.floor((8 * (offset + bytes.length)) / 6)
    const stable = encoded.slice(first, end)
    forms.push(stable, stable.replaceAll('+', '-').replaceAll('/', '_'))
  }
  return forms
}

function lineBreakTolerant(form: string): string {
  return Array.from(form, escapeRegExp).join('(?:\\r?\\n)?')
}

function escapeRegExp(char: string): string {
  return char.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')
}
