import { CommanderError } from 'commander'
import { describe, expect, it } from 'vitest'

import { ProctorError } from '../domain/errors.ts'
import { EXIT, exitCodeFor } from './exit-codes.ts'

describe('exit codes', () => {
  it('maps each failure to what a script can act on', () => {
    expect(exitCodeFor(new ProctorError('api_unreachable', 'down'))).toBe(EXIT.unreachable)
    expect(exitCodeFor(new ProctorError('http_409', 'conflict'))).toBe(EXIT.failed)
    expect(exitCodeFor(new ProctorError('http_404', 'missing'))).toBe(EXIT.failed)
    expect(exitCodeFor(new ProctorError('http_500', 'broken'))).toBe(EXIT.failed)
    expect(exitCodeFor(new ProctorError('http_401', 'bad token'))).toBe(EXIT.usage)
    expect(exitCodeFor(new ProctorError('http_403', 'wrong scope'))).toBe(EXIT.usage)
    expect(exitCodeFor(new ProctorError('http_400', 'bad input'))).toBe(EXIT.usage)
    expect(exitCodeFor(new ProctorError('config_invalid', 'bad yaml'))).toBe(EXIT.usage)
    expect(exitCodeFor(new ProctorError('operation_failed', 'no submission'))).toBe(EXIT.failed)
    expect(exitCodeFor(new Error('a bug'))).toBe(EXIT.failed)
  })

  it('treats commander usage errors as usage, and help as success', () => {
    expect(exitCodeFor(new CommanderError(1, 'commander.unknownOption', 'unknown option'))).toBe(
      EXIT.usage,
    )
    expect(exitCodeFor(new CommanderError(0, 'commander.helpDisplayed', '(help)'))).toBe(EXIT.ok)
  })
})
