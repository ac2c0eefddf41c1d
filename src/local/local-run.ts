import { mkdirSync, readdirSync } from 'node:fs'
import path from 'node:path'

import type { Logger } from 'pino'

import type { Builder } from '../build/builder.ts'
import { loadChallengeFile } from '../config/challenge.ts'
import { ProctorError } from '../domain/errors.ts'
import { classifyParticipantRun, type RunFailure } from '../runtime/classify.ts'
import type { ContainerRuntime, PhaseRunResult } from '../runtime/container-runtime.ts'
import { IN, phaseRunRequest } from '../worker/phase-request.ts'

export interface LocalRunOptions {
  repoDir: string
  challengeFile: string
  /** Sample inputs to mount at /proctor/input (the hidden ones stay with the organizers). */
  inputsDir: string
  outputDir: string
  builders: Record<'repo2docker' | 'dockerfile', Builder>
  runtime: ContainerRuntime
  log: Logger
  say: (text: string) => void
}

export interface LocalRunResult {
  imageId: string
  run: PhaseRunResult
  failure: RunFailure | null
  outputs: string[]
}

/**
 * `proctor local-run`: what proctor does with a participant's repository, on their own
 * machine: build it with the challenge's builder, then run the participant phase under the
 * same container contract (same user, mounts, environment and limits) on sample inputs.
 */
export async function localRun(options: LocalRunOptions): Promise<LocalRunResult> {
  const challenge = loadChallengeFile(options.challengeFile)
  const phase = challenge.definition.phases.find((p) => p.image === 'participant')
  if (!phase)
    throw new ProctorError(
      'no_participant_phase',
      `${options.challengeFile} has no participant phase`,
    )

  const builder = options.builders[challenge.definition.build.builder]
  const name = `proctor-local/${path
    .basename(path.resolve(options.repoDir))
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, '-')}:latest`
  options.say(`building ${options.repoDir} with ${builder.name} as ${name}`)
  const built = await builder.build({
    contextDir: path.resolve(options.repoDir),
    imageName: name,
    labels: { 'proctor.local-run': 'true' },
    timeoutMs: challenge.definition.build.timeSeconds * 1000,
    memoryBytes: challenge.definition.build.memoryMb * 1024 * 1024,
    maxImageBytes: challenge.definition.build.maxImageMb * 1024 * 1024,
    onLog: (text) => options.log.debug({ build: text.trimEnd() }),
  })

  mkdirSync(options.outputDir, { recursive: true })
  const request = phaseRunRequest({
    phase,
    image: built.imageId,
    mounts: [
      { hostPath: path.resolve(options.inputsDir), containerPath: IN.input, readOnly: true },
    ],
    outputDir: path.resolve(options.outputDir),
    debug: true,
    labels: { 'proctor.local-run': 'true' },
  })
  options.say(
    `running ${phase.name} as proctor does:\n  ${dockerRunEquivalent(request.image, request)}`,
  )
  const run = await options.runtime.runPhase(request)
  return {
    imageId: built.imageId,
    run,
    failure: classifyParticipantRun(run, phase.limits),
    outputs: readdirSync(options.outputDir),
  }
}

/** The `docker run` command that matches a run request, for participants to copy. */
export function dockerRunEquivalent(
  image: string,
  request: ReturnType<typeof phaseRunRequest>,
): string {
  const { limits } = request
  const args = [
    'docker run --rm',
    '--network none',
    `--user ${request.user}`,
    '--read-only',
    `--tmpfs /tmp:rw,exec,nosuid,nodev,size=${limits.tmpfsMb}m`,
    '--cap-drop ALL',
    '--security-opt no-new-privileges',
    `--memory ${limits.memoryMb}m --memory-swap ${limits.memoryMb}m`,
    `--cpus ${limits.cpus}`,
    request.runtime === 'runsc' ? '--runtime runsc' : `--pids-limit ${limits.pids}`,
    '--init',
    ...request.mounts.map((m) => `-v ${m.hostPath}:${m.containerPath}${m.readOnly ? ':ro' : ''}`),
    `-v ${request.outputDir ?? '$PWD/output'}:${IN.output}`,
    ...Object.entries(request.env).map(([k, v]) => `-e ${k}=${v}`),
    image,
    ...(request.command ?? []),
  ]
  return args.join(' \\\n    ')
}
