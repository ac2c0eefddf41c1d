/**
 * A strict JSON parser for files people write by hand (crowdai.json). It accepts what
 * JSON.parse accepts, except duplicate keys, and when it refuses it says where (line and
 * column, 1-based) and why in words: a trailing comma, single quotes, a comment, Python's
 * True/None, a missing comma. JSON.parse's messages differ between Node versions and
 * rarely say more than "unexpected token".
 */
export type JsonTextResult =
  | { ok: true; value: unknown }
  | { ok: false; line: number; column: number; message: string }

const MAX_DEPTH = 64

class JsonTextError extends Error {
  constructor(
    readonly position: number,
    message: string,
  ) {
    super(message)
  }
}

export function parseJsonText(text: string): JsonTextResult {
  const parser = new Parser(text)
  try {
    return { ok: true, value: parser.parseDocument() }
  } catch (err) {
    if (!(err instanceof JsonTextError)) throw err
    const { line, column } = lineAndColumn(text, err.position)
    return { ok: false, line, column, message: err.message }
  }
}

export function lineAndColumn(text: string, position: number): { line: number; column: number } {
  let line = 1
  let lineStart = 0
  for (let i = 0; i < position && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++
      lineStart = i + 1
    }
  }
  return { line, column: position - lineStart + 1 }
}

class Parser {
  readonly #text: string
  #pos = 0

  constructor(text: string) {
    this.#text = text
  }

  parseDocument(): unknown {
    this.#skipSpace()
    if (this.#pos >= this.#text.length)
      throw this.#error('the file is empty; it must hold a JSON object')
    const value = this.#parseValue(0)
    this.#skipSpace()
    if (this.#pos < this.#text.length) {
      throw this.#error(
        'unexpected text after the end of the JSON value (only one value is allowed)',
      )
    }
    return value
  }

  #error(message: string, position = this.#pos): JsonTextError {
    return new JsonTextError(position, message)
  }

  #skipSpace(): void {
    const text = this.#text
    while (this.#pos < text.length) {
      const c = text[this.#pos]
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') this.#pos++
      else if (c === '/' && (text[this.#pos + 1] === '/' || text[this.#pos + 1] === '*')) {
        throw this.#error('JSON does not allow comments')
      } else return
    }
  }

  #parseValue(depth: number): unknown {
    if (depth > MAX_DEPTH)
      throw this.#error(`the JSON is nested more than ${MAX_DEPTH} levels deep`)
    const c = this.#text[this.#pos]
    switch (c) {
      case '{':
        return this.#parseObject(depth)
      case '[':
        return this.#parseArray(depth)
      case '"':
        return this.#parseString()
      case 't':
        return this.#parseWord('true', true)
      case 'f':
        return this.#parseWord('false', false)
      case 'n':
        return this.#parseWord('null', null)
      case "'":
        throw this.#error('JSON strings use double quotes ("), not single quotes')
      case undefined:
        throw this.#error('the file ends where a value was expected')
      case ',':
        throw this.#error('a value is missing before this comma')
      default:
        if (c === '-' || (c >= '0' && c <= '9')) return this.#parseNumber()
        throw this.#unexpectedWord()
    }
  }

  #unexpectedWord(): JsonTextError {
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.#text.slice(this.#pos, this.#pos + 32))?.[0]
    if (word === 'True' || word === 'False' || word === 'None') {
      return this.#error(`${word} is not JSON: write true, false or null in lower case`)
    }
    if (word === 'NaN' || word === 'Infinity') return this.#error(`${word} is not a JSON number`)
    if (word === 'undefined') return this.#error('undefined is not a JSON value: use null')
    if (word) return this.#error(`unexpected ${word}: text values must be in double quotes`)
    const c = this.#text[this.#pos] ?? ''
    return this.#error(`unexpected character ${JSON.stringify(c)} where a value was expected`)
  }

  #parseWord<T>(word: string, value: T): T {
    if (this.#text.startsWith(word, this.#pos)) {
      this.#pos += word.length
      return value
    }
    throw this.#unexpectedWord()
  }

  #parseObject(depth: number): Record<string, unknown> {
    const entries: [string, unknown][] = []
    const seen = new Set<string>()
    this.#pos++ // {
    this.#skipSpace()
    if (this.#text[this.#pos] === '}') {
      this.#pos++
      return {}
    }
    for (;;) {
      const c = this.#text[this.#pos]
      if (c === "'") throw this.#error('JSON strings use double quotes ("), not single quotes')
      if (c === undefined)
        throw this.#error('the file ends before the object is closed (a missing })')
      if (c !== '"') {
        if (/[A-Za-z_$]/.test(c)) throw this.#error('property names must be in double quotes')
        throw this.#error(`expected a property name in double quotes, found ${JSON.stringify(c)}`)
      }
      const keyAt = this.#pos
      const key = this.#parseString()
      if (seen.has(key)) throw this.#error(`"${key}" appears twice in the same object`, keyAt)
      seen.add(key)
      this.#skipSpace()
      if (this.#text[this.#pos] !== ':')
        throw this.#error(`expected : after the property name "${key}"`)
      this.#pos++
      this.#skipSpace()
      entries.push([key, this.#parseValue(depth + 1)])
      this.#skipSpace()
      const next = this.#text[this.#pos]
      if (next === '}') {
        this.#pos++
        // fromEntries defines own properties: a "__proto__" key cannot change the prototype.
        return Object.fromEntries(entries)
      }
      if (next === undefined)
        throw this.#error('the file ends before the object is closed (a missing })')
      if (next !== ',')
        throw this.#error('expected , or } after a property value (a missing comma?)')
      const commaAt = this.#pos
      this.#pos++
      this.#skipSpace()
      if (this.#text[this.#pos] === '}')
        throw this.#error('a trailing comma is not allowed in JSON', commaAt)
    }
  }

  #parseArray(depth: number): unknown[] {
    const items: unknown[] = []
    this.#pos++ // [
    this.#skipSpace()
    if (this.#text[this.#pos] === ']') {
      this.#pos++
      return items
    }
    for (;;) {
      items.push(this.#parseValue(depth + 1))
      this.#skipSpace()
      const next = this.#text[this.#pos]
      if (next === ']') {
        this.#pos++
        return items
      }
      if (next === undefined)
        throw this.#error('the file ends before the list is closed (a missing ])')
      if (next !== ',') throw this.#error('expected , or ] after a list item (a missing comma?)')
      const commaAt = this.#pos
      this.#pos++
      this.#skipSpace()
      if (this.#text[this.#pos] === ']')
        throw this.#error('a trailing comma is not allowed in JSON', commaAt)
    }
  }

  #parseString(): string {
    const text = this.#text
    const start = this.#pos
    this.#pos++ // "
    let out = ''
    let chunkStart = this.#pos
    for (;;) {
      if (this.#pos >= text.length)
        throw this.#error('the file ends inside a text value (a missing ")', start)
      const code = text.charCodeAt(this.#pos)
      if (code === 0x22) {
        out += text.slice(chunkStart, this.#pos)
        this.#pos++
        return out
      }
      if (code < 0x20) {
        throw this.#error(
          'a line break or control character inside a text value must be escaped (\\n, \\t)',
        )
      }
      if (code === 0x5c) {
        out += text.slice(chunkStart, this.#pos)
        out += this.#parseEscape()
        chunkStart = this.#pos
        continue
      }
      this.#pos++
    }
  }

  #parseEscape(): string {
    const c = this.#text[this.#pos + 1]
    const simple: Record<string, string> = {
      '"': '"',
      '\\': '\\',
      '/': '/',
      b: '\b',
      f: '\f',
      n: '\n',
      r: '\r',
      t: '\t',
    }
    if (c !== undefined && c in simple) {
      this.#pos += 2
      return simple[c] ?? ''
    }
    if (c === 'u') {
      const hex = this.#text.slice(this.#pos + 2, this.#pos + 6)
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw this.#error('\\u must be followed by 4 hex digits')
      this.#pos += 6
      return String.fromCharCode(parseInt(hex, 16))
    }
    throw this.#error(`\\${c ?? ''} is not a JSON escape (use \\\\ for a backslash)`)
  }

  #parseNumber(): number {
    const rest = this.#text.slice(this.#pos, this.#pos + 400)
    const match = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(rest)
    if (!match) throw this.#error('a number is malformed')
    const after = rest[match[0].length]
    if (after !== undefined && /[0-9.eExX]/.test(after)) {
      throw this.#error(
        /^-?0\d/.test(rest) ? 'numbers cannot have leading zeros' : 'a number is malformed',
      )
    }
    this.#pos += match[0].length
    return Number(match[0])
  }
}
