import { describe, expect, it } from 'vitest'

import { parseRepo2DockerLine } from './repo2docker-log.ts'

describe('parseRepo2DockerLine', () => {
  it('passes build output through as it came', () => {
    expect(
      parseRepo2DockerLine('{"message": "Step 1/3 : FROM x", "phase": "building"}'),
    ).toMatchObject({
      text: 'Step 1/3 : FROM x',
      phase: 'building',
    })
  })

  it('names the buildpack repo2docker picked', () => {
    const line = parseRepo2DockerLine(
      '{"message": "Using DockerBuildPack builder\\n", "phase": "building"}',
    )

    expect(line.buildpack).toBe('DockerBuildPack')
  })

  it('keeps lines without a phase and plain text', () => {
    expect(parseRepo2DockerLine('{"message": "Picked Local content provider.\\n"}')).toMatchObject({
      text: 'Picked Local content provider.\n',
      phase: null,
    })
    expect(parseRepo2DockerLine('Traceback (most recent call last):').text).toBe(
      'Traceback (most recent call last):\n',
    )
  })

  it('ends a failure message with a newline and names the exception', () => {
    const line = parseRepo2DockerLine(
      JSON.stringify({
        message: "Error during build: module 'chardet' has no attribute 'universaldetector'",
        phase: 'failed',
        exc_info:
          'Traceback (most recent call last):\n  File "x"\nAttributeError: module \'chardet\'',
      }),
    )

    expect(line.text.endsWith('\n')).toBe(true)
    expect(line.exception).toBe('AttributeError')
    expect(line.traceback).toContain('Traceback')
  })

  it('takes the class name of a dotted exception', () => {
    const line = parseRepo2DockerLine(
      JSON.stringify({
        message: 'x',
        phase: 'failed',
        exc_info: 'Traceback\ndocker.errors.APIError: 500 Server Error',
      }),
    )

    expect(line.exception).toBe('APIError')
  })

  it('flags an engine repo2docker cannot reach', () => {
    const line = parseRepo2DockerLine(
      JSON.stringify({
        message: '\nContainer engine initialization error: (Check if docker is running)\n',
      }),
    )

    expect(line.engineUnreachable).toBe(true)
  })

  it('drops the engine aux event', () => {
    expect(
      parseRepo2DockerLine(
        JSON.stringify({ message: '{"aux": {"ID": "sha256:1"}}', phase: 'building' }),
      ).text,
    ).toBe('')
  })
})
