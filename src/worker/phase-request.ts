import type { PhaseDefinition } from '../config/challenge.ts'
import type { Mount, PhaseRunRequest } from '../runtime/container-runtime.ts'

/** Where the container contract puts things (docs/contracts.md). */
export const IN = {
  input: '/proctor/input',
  output: '/proctor/output',
  predictions: '/proctor/predictions',
  labels: '/proctor/labels',
  secrets: '/proctor/secrets',
} as const

/** Every phase runs as this uid:gid, whatever the image says. */
export const PARTICIPANT_USER = '1000:1000'
export const DEFAULT_COMMAND: readonly string[] = ['./run.sh']
export const LOG_LIMIT_BYTES = 256 * 1024

/**
 * The run request for one phase under the container contract. The evaluation job and
 * `proctor local-run` both build it here, so what a participant runs locally is exactly
 * what proctor runs.
 */
export function phaseRunRequest(options: {
  phase: PhaseDefinition
  image: string
  mounts: Mount[]
  outputDir: string
  debug: boolean
  labels: Record<string, string>
}): PhaseRunRequest {
  const { phase } = options
  const isParticipant = phase.image === 'participant'
  return {
    image: options.image,
    command: phase.command ?? (isParticipant ? DEFAULT_COMMAND : undefined),
    user: PARTICIPANT_USER,
    env: {
      PROCTOR_INPUT: IN.input,
      PROCTOR_OUTPUT: IN.output,
      PROCTOR_DEBUG: options.debug ? '1' : '0',
    },
    mounts: options.mounts,
    outputDir: options.outputDir,
    limits: phase.limits,
    network: phase.network,
    runtime: phase.runtime,
    gpus: phase.gpus,
    labels: { ...options.labels, 'proctor.phase': phase.name },
    logLimitBytes: LOG_LIMIT_BYTES,
    // A participant's output is never read as progress: they must not drive the bar.
    trustProgress: !isParticipant,
  }
}
