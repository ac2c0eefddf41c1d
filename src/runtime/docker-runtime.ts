import { setTimeout as sleep } from 'node:timers/promises'

import type Docker from 'dockerode'
import type { Logger } from 'pino'

import { InfrastructureError, errorMessage } from '../domain/errors.ts'
import {
  PROCTOR_LABEL,
  type ContainerRuntime,
  type ImageFileStat,
  type PhaseRunRequest,
  type PhaseRunResult,
} from './container-runtime.ts'
import { buildCreateOptions, validateRunRequest } from './container-spec.ts'
import { engineStatus } from './docker-client.ts'
import { prepareOutputFolder } from './output-size.ts'
import { PhaseRun } from './phase-run.ts'

export const DEFAULT_KILL_GRACE_MS = 5_000
export const DEFAULT_OUTPUT_POLL_MS = 1_000
const REMOVE_ATTEMPTS = 3

export interface DockerRuntimeOptions {
  /** Between SIGTERM at the deadline and SIGKILL. */
  readonly killGraceMs?: number
  /** How often the output folder is measured while a phase runs. */
  readonly outputPollMs?: number
}

/**
 * The container runtime on a Docker Engine (dockerd 20.10, API 1.41, runc or runsc).
 *
 * Bind mounts and the output folder are host paths: the engine must run on this machine.
 *
 *   const runtime = new DockerRuntime(connectDocker(), logger, { killGraceMs: 5_000 })
 */
export class DockerRuntime implements ContainerRuntime {
  readonly #docker: Docker
  readonly #logger: Logger
  readonly #killGraceMs: number
  readonly #outputPollMs: number

  /** `docker` from connectDocker(): API pinned to 1.41, no modem timeout. */
  constructor(docker: Docker, logger: Logger, options: DockerRuntimeOptions = {}) {
    this.#docker = docker
    this.#logger = logger
    this.#killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS
    this.#outputPollMs = options.outputPollMs ?? DEFAULT_OUTPUT_POLL_MS
  }

  async runPhase(request: PhaseRunRequest): Promise<PhaseRunResult> {
    const { uid, gid } = validateRunRequest(request)
    if (request.signal?.aborted) return cancelledBeforeCreate()
    if (request.outputDir) await prepareOutputFolder(request.outputDir, uid, gid)

    // No abort signal here: a create aborted in flight can still make a container whose id
    // proctor never learns. Cancellation is checked again before the start.
    const container = await this.#createContainer(request.image, buildCreateOptions(request))
    const logger = this.#logger.child({ containerId: container.id.slice(0, 12) })
    try {
      const run = new PhaseRun(container, request, logger, {
        killGraceMs: this.#killGraceMs,
        outputPollMs: this.#outputPollMs,
      })
      return await run.run()
    } finally {
      // The container MUST be removed on every path, including errors and cancellation.
      await this.#remove(container, logger)
    }
  }

  async removeByLabel(labels: Readonly<Record<string, string>>): Promise<number> {
    const selector = { ...labels, [PROCTOR_LABEL]: '1' }
    const containers = await this.#docker.listContainers({
      all: true,
      filters: { label: Object.entries(selector).map(([key, value]) => `${key}=${value}`) },
    })
    let removed = 0
    for (const found of containers) {
      const container = this.#docker.getContainer(found.Id)
      if (
        await this.#remove(container, this.#logger.child({ containerId: found.Id.slice(0, 12) }))
      ) {
        removed++
      }
    }
    if (removed > 0) this.#logger.info({ labels: selector, removed }, 'removed phase containers')
    return removed
  }

  async statImageFile(image: string, path: string): Promise<ImageFileStat | null> {
    // A container that is created but never started: the engine reads the path from its root.
    const container = await this.#createContainer(image, {
      Image: image,
      Cmd: ['/proctor-stat'],
      Labels: { [PROCTOR_LABEL]: '1' },
      NetworkDisabled: true,
      HostConfig: { NetworkMode: 'none', LogConfig: { Type: 'none', Config: {} } },
    })
    const logger = this.#logger.child({ containerId: container.id.slice(0, 12) })
    try {
      const response = (await container.infoArchive({ path })) as NodeJS.ReadableStream & {
        headers?: Record<string, string | string[] | undefined>
      }
      response.resume()
      return parsePathStat(response.headers?.['x-docker-container-path-stat'])
    } catch (err) {
      if (engineStatus(err) === 404) return null
      throw new InfrastructureError(
        `could not read ${path} in image ${image}: ${errorMessage(err)}. Check the engine (docker info).`,
        { cause: err },
      )
    } finally {
      await this.#remove(container, logger)
    }
  }

  async #createContainer(
    image: string,
    options: Docker.ContainerCreateOptions,
  ): Promise<Docker.Container> {
    try {
      return await this.#docker.createContainer(options)
    } catch (err) {
      const hint =
        engineStatus(err) === 404
          ? 'the image is not on this machine: build or pull it first'
          : 'check the engine (docker info) and that the runtime is registered'
      throw new InfrastructureError(
        `could not create a container from ${image}: ${errorMessage(err)}; ${hint}.`,
        { cause: err },
      )
    }
  }

  /** True when the container is gone. Retries: the engine may still be tearing it down. */
  async #remove(container: Docker.Container, logger: Logger): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await container.remove({ force: true, v: true })
        return true
      } catch (err) {
        if (engineStatus(err) === 404) return true
        if (attempt >= REMOVE_ATTEMPTS) {
          logger.error(
            { err },
            'could not remove a phase container; remove it with `docker rm -f` or removeByLabel',
          )
          return false
        }
        await sleep(500 * attempt)
      }
    }
  }
}

function cancelledBeforeCreate(): PhaseRunResult {
  return {
    outcome: 'cancelled',
    exitCode: null,
    signal: null,
    execFailed: false,
    wallMs: 0,
    cpuMs: null,
    peakMemoryBytes: null,
    peakPids: null,
    log: { text: '', bytesTotal: 0, bytesElided: 0 },
    outputBytes: null,
    containerId: null,
  }
}

/** The engine's `X-Docker-Container-Path-Stat`: base64 JSON of a Go os.FileInfo. */
function parsePathStat(header: string | string[] | undefined): ImageFileStat | null {
  if (typeof header !== 'string') return null
  const stat: unknown = JSON.parse(Buffer.from(header, 'base64').toString('utf8'))
  if (typeof stat !== 'object' || stat === null) return null
  const { size, mode, linkTarget } = stat as {
    size?: unknown
    mode?: unknown
    linkTarget?: unknown
  }
  if (typeof size !== 'number' || typeof mode !== 'number') return null
  // Go's FileMode: permission bits low, ModeDir the top bit, ModeSymlink bit 27.
  const isDirectory = (mode >>> 31) % 2 === 1
  const isLink = (mode >>> 27) % 2 === 1
  return {
    size,
    mode: mode & 0o7777,
    isDirectory,
    isExecutable: !isDirectory && (mode & 0o111) !== 0,
    linkTarget: isLink && typeof linkTarget === 'string' && linkTarget !== '' ? linkTarget : null,
  }
}
