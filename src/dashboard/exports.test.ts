import { describe, expect, it } from 'vitest'

import { csvCell, toCsv, toJson, type Table } from './exports.ts'

async function collect(lines: AsyncIterable<string>): Promise<string> {
  let text = ''
  for await (const line of lines) text += line
  return text
}

const table = (): Table => ({
  columns: ['id', 'tag', 'score'],
  rows: [
    [1, 'v1', 0.5],
    [2, 'a,"b"', null],
  ],
})

describe('exports', () => {
  it('quotes cells with commas, quotes and line breaks, and leaves numbers and plain text alone', () => {
    expect(csvCell('plain')).toBe('plain')
    expect(csvCell('a,"b"')).toBe('"a,""b"""')
    expect(csvCell('two\nlines')).toBe('"two\nlines"')
    expect(csvCell(-3.5)).toBe('-3.5')
    expect(csvCell(null)).toBe('')
  })

  it('defuses text a spreadsheet would run as a formula', () => {
    expect(csvCell('=HYPERLINK("http://x")')).toBe(`"'=HYPERLINK(""http://x"")"`)
    expect(csvCell('+1')).toBe("'+1")
    expect(csvCell('@sum')).toBe("'@sum")
  })

  it('writes CSV with a header and CRLF lines, and JSON as an array of records', async () => {
    expect(await collect(toCsv(table()))).toBe('id,tag,score\r\n1,v1,0.5\r\n2,"a,""b""",\r\n')
    expect(JSON.parse(await collect(toJson(table())))).toEqual([
      { id: 1, tag: 'v1', score: 0.5 },
      { id: 2, tag: 'a,"b"', score: null },
    ])
  })
})
