import { describe, expect, it } from 'vitest'

import { parseJsonText } from './json-text.ts'

describe('parseJsonText', () => {
  it.each([
    '{"a": [1, -2.5e3, true, false, null, "x\\n\\u00e9"], "b": {}}',
    '[]',
    '"text"',
    '0',
    '{"__proto__": {"polluted": true}}',
  ])('parses %s like JSON.parse', (text) => {
    expect(parseJsonText(text)).toEqual({ ok: true, value: JSON.parse(text) as unknown })
  })

  it('keeps a "__proto__" key as a plain key', () => {
    const result = parseJsonText('{"__proto__": {"polluted": true}}')
    expect(result.ok && Object.getPrototypeOf(result.value)).toBe(Object.prototype)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it.each([
    ['{"a": 1,}', 1, 8, 'a trailing comma is not allowed in JSON'],
    ['[1, 2,\n]', 1, 6, 'a trailing comma is not allowed in JSON'],
    ["{'a': 1}", 1, 2, 'JSON strings use double quotes ("), not single quotes'],
    ['{"a": \'b\'}', 1, 7, 'JSON strings use double quotes ("), not single quotes'],
    ['{a: 1}', 1, 2, 'property names must be in double quotes'],
    ['{"a": 1 "b": 2}', 1, 9, 'expected , or } after a property value (a missing comma?)'],
    ['{"a": 1', 1, 8, 'the file ends before the object is closed (a missing })'],
    ['{"a": None}', 1, 7, 'None is not JSON: write true, false or null in lower case'],
    ['{"a": NaN}', 1, 7, 'NaN is not a JSON number'],
    ['{"a": 01}', 1, 7, 'numbers cannot have leading zeros'],
    [
      '{"a": "x\ny"}',
      1,
      9,
      'a line break or control character inside a text value must be escaped (\\n, \\t)',
    ],
    ['{"a": "\\x"}', 1, 8, '\\x is not a JSON escape (use \\\\ for a backslash)'],
    ['{} {}', 1, 4, 'unexpected text after the end of the JSON value (only one value is allowed)'],
    ['  ', 1, 3, 'the file is empty; it must hold a JSON object'],
    ['/* c */ {}', 1, 1, 'JSON does not allow comments'],
    ['{"a": 1, "a": 2}', 1, 10, '"a" appears twice in the same object'],
    ['{"a": hello}', 1, 7, 'unexpected hello: text values must be in double quotes'],
    ['{"a": "open', 1, 7, 'the file ends inside a text value (a missing ")'],
  ])('refuses %j at line %i, column %i: %s', (text, line, column, message) => {
    expect(parseJsonText(text)).toEqual({ ok: false, line, column, message })
  })

  it('refuses nesting deeper than 64 levels', () => {
    const deep = '['.repeat(100) + ']'.repeat(100)
    expect(parseJsonText(deep)).toMatchObject({
      ok: false,
      message: 'the JSON is nested more than 64 levels deep',
    })
  })
})
