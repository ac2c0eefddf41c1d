import type { ReasonCode } from '../domain/reasons.ts'
import type { PhaseRunResult, RunLimits } from './container-runtime.ts'

/**
 * What a participant's phase run means for the submission: null when it succeeded, else the
 * reason code and a message for the participant. Messages are predicates the caller puts
 * after the phase's name: "predict ran longer than the time limit of 600 s".
 *
 * Checked in this order, the first that applies wins:
 * 1. cancelled by the caller                         → cancelled
 * 2. stopped at the time limit                       → time_limit
 * 3. killed by the kernel for memory (OOMKilled)     → memory_limit
 * 4. output folder past the limit (during or after)  → output_too_large
 * 5. the command could not be executed (126/127)     → entrypoint_missing
 * 6. ended by a signal (exit 128+n)                  → crashed, "killed by signal 9 (SIGKILL)"
 * 7. any other non-zero exit                         → crashed, "exited with code 1"
 *
 * Exit 126 or 127 from the program itself (a script whose own command is missing) is a crash,
 * not a missing entry point: only the init's failure to exec the command counts (execFailed).
 */
export interface RunFailure {
  readonly code: ReasonCode
  readonly message: string
}

export function classifyParticipantRun(
  result: PhaseRunResult,
  limits: RunLimits,
): RunFailure | null {
  if (result.outcome === 'cancelled') return { code: 'cancelled', message: 'was cancelled' }

  if (result.outcome === 'timed_out') {
    return {
      code: 'time_limit',
      message: `ran longer than the time limit of ${formatNumber(limits.timeSeconds)} s`,
    }
  }

  if (result.outcome === 'oom_killed') {
    return {
      code: 'memory_limit',
      message: `used more than the memory limit of ${formatNumber(limits.memoryMb)} MiB`,
    }
  }

  const outputLimit = limits.outputMb * 1024 * 1024
  if (result.outcome === 'output_exceeded' || (result.outputBytes ?? 0) > outputLimit) {
    const limit = `the output limit of ${formatNumber(limits.outputMb)} MiB`
    const message =
      result.outputBytes === null
        ? `wrote more than ${limit}`
        : `wrote ${(result.outputBytes / (1024 * 1024)).toFixed(1)} MiB, more than ${limit}`
    return { code: 'output_too_large', message }
  }

  const exitCode = result.exitCode ?? 0
  if (result.execFailed && (exitCode === 126 || exitCode === 127)) {
    const why = exitCode === 127 ? 'not found' : 'not executable'
    return {
      code: 'entrypoint_missing',
      message: `could not start its entry point: ${why} (exit code ${exitCode})`,
    }
  }

  if (result.outcome === 'killed' && result.signal !== null) {
    return {
      code: 'crashed',
      message: `killed by signal ${exitCode - 128} (${result.signal})`,
    }
  }

  if (exitCode !== 0) return { code: 'crashed', message: `exited with code ${exitCode}` }

  return null
}

function formatNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1)
}
