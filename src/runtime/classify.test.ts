import { describe, expect, it } from 'vitest'

import { classifyParticipantRun } from './classify.ts'
import type { PhaseRunResult, RunLimits } from './container-runtime.ts'

const limits: RunLimits = {
  timeSeconds: 600,
  memoryMb: 1024,
  cpus: 1,
  pids: 128,
  tmpfsMb: 64,
  outputMb: 64,
}

function result(overrides: Partial<PhaseRunResult> = {}): PhaseRunResult {
  return {
    outcome: 'exited',
    exitCode: 0,
    signal: null,
    execFailed: false,
    wallMs: 1200,
    cpuMs: 900,
    peakMemoryBytes: 50_000_000,
    peakPids: 3,
    log: { text: '', bytesTotal: 0, bytesElided: 0 },
    outputBytes: 1024,
    containerId: 'c0ffee',
    ...overrides,
  }
}

describe('classifyParticipantRun', () => {
  it('accepts a clean exit within the limits', () => {
    expect(classifyParticipantRun(result(), limits)).toBeNull()
  })

  it('reports the time limit for a run stopped at its deadline, whatever its exit code', () => {
    for (const exitCode of [0, 143, 137]) {
      expect(classifyParticipantRun(result({ outcome: 'timed_out', exitCode }), limits)).toEqual({
        code: 'time_limit',
        message: 'ran longer than the time limit of 600 s',
      })
    }
  })

  it('reports the memory limit from the kernel OOM kill', () => {
    expect(
      classifyParticipantRun(
        result({ outcome: 'oom_killed', exitCode: 137, signal: 'SIGKILL' }),
        limits,
      ),
    ).toEqual({ code: 'memory_limit', message: 'used more than the memory limit of 1024 MiB' })
  })

  it('reports exit 137 without an OOM kill as a crash by SIGKILL', () => {
    expect(
      classifyParticipantRun(
        result({ outcome: 'killed', exitCode: 137, signal: 'SIGKILL' }),
        limits,
      ),
    ).toEqual({ code: 'crashed', message: 'killed by signal 9 (SIGKILL)' })
    expect(
      classifyParticipantRun(
        result({ outcome: 'killed', exitCode: 139, signal: 'SIGSEGV' }),
        limits,
      ),
    ).toEqual({ code: 'crashed', message: 'killed by signal 11 (SIGSEGV)' })
  })

  it('reports any other non-zero exit code', () => {
    expect(classifyParticipantRun(result({ exitCode: 1 }), limits)).toEqual({
      code: 'crashed',
      message: 'exited with code 1',
    })
  })

  it('reports output past the limit, measured after the run or stopped during it', () => {
    const over = 64 * 1024 * 1024 + 1
    expect(classifyParticipantRun(result({ outputBytes: over }), limits)).toEqual({
      code: 'output_too_large',
      message: 'wrote 64.0 MiB, more than the output limit of 64 MiB',
    })
    expect(
      classifyParticipantRun(
        result({ outcome: 'output_exceeded', exitCode: 137, outputBytes: 200 * 1024 * 1024 }),
        limits,
      ),
    ).toEqual({
      code: 'output_too_large',
      message: 'wrote 200.0 MiB, more than the output limit of 64 MiB',
    })
  })

  it('reports a missing or non-executable entry point only when the init could not exec it', () => {
    expect(classifyParticipantRun(result({ exitCode: 127, execFailed: true }), limits)).toEqual({
      code: 'entrypoint_missing',
      message: 'could not start its entry point: not found (exit code 127)',
    })
    expect(classifyParticipantRun(result({ exitCode: 126, execFailed: true }), limits)).toEqual({
      code: 'entrypoint_missing',
      message: 'could not start its entry point: not executable (exit code 126)',
    })
    expect(classifyParticipantRun(result({ exitCode: 127 }), limits)).toEqual({
      code: 'crashed',
      message: 'exited with code 127',
    })
  })

  it('reports a cancelled run as cancelled, before anything else', () => {
    expect(
      classifyParticipantRun(
        result({ outcome: 'cancelled', exitCode: null, outputBytes: null }),
        limits,
      ),
    ).toEqual({ code: 'cancelled', message: 'was cancelled' })
  })

  it('prefers the time limit to the output limit and the memory limit to a crash', () => {
    const over = 100 * 1024 * 1024
    expect(
      classifyParticipantRun(result({ outcome: 'timed_out', outputBytes: over }), limits)?.code,
    ).toBe('time_limit')
    expect(
      classifyParticipantRun(result({ outcome: 'oom_killed', exitCode: 1 }), limits)?.code,
    ).toBe('memory_limit')
  })
})
