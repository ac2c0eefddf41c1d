import { stat } from 'node:fs/promises'
import path from 'node:path'

import type Docker from 'dockerode'

import { InfrastructureError, SubmissionFailure } from '../domain/errors.ts'
import { formatMb } from './measure.ts'

/**
 * A builder turns a checked-out repository into a local image. Two exist: repo2docker
 * (Binder-compatible repositories) and a plain Dockerfile build through the Engine API.
 *
 * Failures the participant caused throw `SubmissionFailure` (`build_failed`,
 * `image_too_large`) with the end of the build log in `log`; proctor's own trouble (engine
 * down, builder crash) throws `InfrastructureError`. A build that runs past its time limit is
 * the participant's, unless the engine stopped answering.
 */
export interface BuildRequest {
  /** The checked-out repository. */
  contextDir: string
  /** Local `name:tag` to give the image, already sanitized. */
  imageName: string
  labels: Record<string, string>
  timeoutMs: number
  memoryBytes?: number
  maxImageBytes: number
  /** Build output, streamed as it comes (the caller caps and stores it). */
  onLog: (text: string) => void
  signal?: AbortSignal
}

export interface BuildResult {
  imageId: string
  sizeBytes: number
  builder: 'repo2docker' | 'dockerfile'
  builderVersion: string
  /** The repo2docker buildpack used (`DockerBuildPack`…); null for the Dockerfile builder. */
  buildpack: string | null
  /** Things the participant should know about how the image was built. */
  notes: string[]
}

export interface Builder {
  readonly name: 'repo2docker' | 'dockerfile'
  version(): Promise<string>
  build(req: BuildRequest): Promise<BuildResult>
}

/** Lines of build output quoted in a failure. */
export const TAIL_LINES = 40
const ENGINE_PING_MS = 5000

/** Keeps the last lines of streamed output, for failure messages. */
export class LogTail {
  readonly #max: number
  #lines: string[] = []
  #partial = ''

  constructor(max = TAIL_LINES) {
    this.#max = max
  }

  write(text: string): void {
    const parts = (this.#partial + text.replace(/\r(?!\n)/g, '\n')).split(/\r?\n/)
    this.#partial = parts.pop() ?? ''
    this.#lines.push(...parts)
    if (this.#lines.length > this.#max) this.#lines = this.#lines.slice(-this.#max)
  }

  text(): string {
    const lines = this.#partial === '' ? this.#lines : [...this.#lines, this.#partial]
    return lines.slice(-this.#max).join('\n')
  }
}

/** `binder` or `.binder` when the repository has one (repo2docker then reads only that). */
export async function findBinderDir(contextDir: string): Promise<'binder' | '.binder' | null> {
  const [binder, dotBinder] = await Promise.all([
    isDirectory(path.join(contextDir, 'binder')),
    isDirectory(path.join(contextDir, '.binder')),
  ])
  if (binder && dotBinder) {
    throw new SubmissionFailure(
      'build_failed',
      'the repository has both binder/ and .binder/; keep one of them and push a new tag',
    )
  }
  return binder ? 'binder' : dotBinder ? '.binder' : null
}

export function binderNote(dir: 'binder' | '.binder'): string {
  return `built from the configuration in ${dir}/: files such as Dockerfile or requirements.txt at the repository root were ignored`
}

/**
 * Reads the built image's id and size and enforces the size limit. An oversized image is
 * removed: nothing will run it, and it holds disk the next build needs.
 */
export async function checkBuiltImage(
  docker: Docker,
  imageName: string,
  maxImageBytes: number,
  tail: LogTail,
): Promise<{ imageId: string; sizeBytes: number }> {
  let info: Docker.ImageInspectInfo
  try {
    info = await docker.getImage(imageName).inspect()
  } catch (err) {
    throw new InfrastructureError(
      `the build reported success but image ${imageName} cannot be inspected: ${String(err)}`,
      { cause: err },
    )
  }
  if (info.Size > maxImageBytes) {
    await docker
      .getImage(info.Id)
      .remove({ force: true })
      .catch(() => undefined)
    throw new SubmissionFailure(
      'image_too_large',
      `the image is ${formatMb(info.Size)}, over the ${formatMb(maxImageBytes)} limit (base image included): install fewer or smaller packages and push a new tag`,
      { log: tail.text() },
    )
  }
  return { imageId: info.Id, sizeBytes: info.Size }
}

/**
 * The participant-facing summary of a failed build step. A base image that cannot be pulled
 * gets a hint: builds here may have no internet access, so only local base images work.
 */
export function describeBuildError(error: string, tail: LogTail): string {
  const base = [...tail.text().matchAll(/^Step \d+\/\d+ : FROM (\S+)/gm)].at(-1)?.[1]
  if (base && PULL_FAILURE.test(error)) {
    return `the base image ${base} cannot be pulled (${error}); this build host may have no internet access: build FROM an image the organizers provide and push a new tag`
  }
  return `the image did not build: ${error}`
}

const PULL_FAILURE =
  /pull access denied|dial tcp: lookup|no such host|manifest unknown|i\/o timeout|registry-1\.docker\.io/i

/** Whether the engine answers a ping within a few seconds. */
export async function isEngineReachable(docker: Docker): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ENGINE_PING_MS)
  })
  const ping = docker.ping().then(
    () => true,
    () => false,
  )
  try {
    return await Promise.race([ping, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * The failure for a build stopped at its time limit: the participant's, unless the engine
 * no longer answers, in which case the build hung on proctor's side.
 */
export async function timeLimitFailure(
  docker: Docker,
  timeoutMs: number,
  tail: LogTail,
): Promise<Error> {
  const seconds = Math.round(timeoutMs / 1000)
  if (!(await isEngineReachable(docker))) {
    return new InfrastructureError(
      `the build was stopped after ${seconds} s and the Docker Engine does not answer`,
    )
  }
  return new SubmissionFailure(
    'build_failed',
    `the build took longer than ${seconds} s and was stopped: make it faster (fewer or prebuilt dependencies) and push a new tag`,
    { log: tail.text() },
  )
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory()
  } catch {
    return false
  }
}
