import { describe, expect, it } from 'vitest'

import { MAX_PROGRESS_LINE, ProgressScanner, parseProgressLine, type Progress } from './progress.ts'

function scan(chunks: string[]): Progress[] {
  const seen: Progress[] = []
  const scanner = new ProgressScanner((progress) => seen.push(progress))
  for (const chunk of chunks) scanner.push(Buffer.from(chunk))
  scanner.end()
  return seen
}

describe('parseProgressLine', () => {
  it('reads a fraction and a message', () => {
    expect(parseProgressLine('PROCTOR_PROGRESS 0.25 scored 250 of 1000')).toEqual({
      fraction: 0.25,
      message: 'scored 250 of 1000',
    })
    expect(parseProgressLine('PROCTOR_PROGRESS 1')).toEqual({ fraction: 1, message: '' })
    expect(parseProgressLine('PROCTOR_PROGRESS .5\r')).toEqual({ fraction: 0.5, message: '' })
  })

  it('refuses fractions outside 0..1 and other lines', () => {
    expect(parseProgressLine('PROCTOR_PROGRESS 1.5')).toBeNull()
    expect(parseProgressLine('PROCTOR_PROGRESS -0.1')).toBeNull()
    expect(parseProgressLine('PROCTOR_PROGRESS half')).toBeNull()
    expect(parseProgressLine('progress 0.5')).toBeNull()
    expect(parseProgressLine(' PROCTOR_PROGRESS 0.5')).toBeNull()
  })
})

describe('ProgressScanner', () => {
  it('finds progress lines split between chunks', () => {
    const text = 'loading\nPROCTOR_PROGRESS 0.5 half way\nnoise\nPROCTOR_PROGRESS 1 done'
    for (let cut = 0; cut <= text.length; cut++) {
      expect(scan([text.slice(0, cut), text.slice(cut)])).toEqual([
        { fraction: 0.5, message: 'half way' },
        { fraction: 1, message: 'done' },
      ])
    }
  })

  it('skips lines longer than its buffer', () => {
    const long = `PROCTOR_PROGRESS 0.5 ${'x'.repeat(MAX_PROGRESS_LINE)}\nPROCTOR_PROGRESS 0.6\n`
    expect(scan([long])).toEqual([{ fraction: 0.6, message: '' }])
  })

  it('strips terminal sequences from the message', () => {
    expect(scan(['PROCTOR_PROGRESS 0.1 \x1b[32mok\x1b[0m\n'])).toEqual([
      { fraction: 0.1, message: 'ok' },
    ])
  })
})
