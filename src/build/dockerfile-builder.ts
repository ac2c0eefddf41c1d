import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import path from 'node:path'

import type Docker from 'dockerode'
import type { Logger } from 'pino'

import { InfrastructureError, SubmissionFailure } from '../domain/errors.ts'
import { BuildContainers } from './build-containers.ts'
import {
  binderNote,
  checkBuiltImage,
  describeBuildError,
  findBinderDir,
  isEngineReachable,
  LogTail,
  timeLimitFailure,
  type Builder,
  type BuildRequest,
  type BuildResult,
} from './builder.ts'
import { BUILD_NETWORK, resolveBuildNetwork, type BuildNetworkOption } from './build-network.ts'

/** The same build arguments repo2docker passes, so a Dockerfile behaves alike in both. */
const BUILD_ARGS = { NB_USER: 'participant', NB_UID: '1000' }
const ENGINE_TROUBLE =
  /no space left on device|failed to register layer|error creating overlay mount/i

export interface DockerfileBuilderOptions {
  /** The network build steps run on (see build-network.ts); defaults to `proctor-build`. */
  network?: BuildNetworkOption
}

/**
 * Builds a repository's Dockerfile through the Engine API (the classic builder). Like
 * repo2docker, it reads `binder/Dockerfile` (or `.binder/`) when that folder exists, with the
 * repository root as the context, so a repository builds the same with either builder.
 */
export class DockerfileBuilder implements Builder {
  readonly name = 'dockerfile' as const
  readonly #docker: Docker
  readonly #logger: Logger
  readonly #network: BuildNetworkOption
  #version: Promise<string> | undefined

  constructor(docker: Docker, logger: Logger, options: DockerfileBuilderOptions = {}) {
    this.#docker = docker
    this.#logger = logger.child({ builder: 'dockerfile' })
    this.#network = options.network === undefined ? BUILD_NETWORK : options.network
  }

  version(): Promise<string> {
    this.#version ??= this.#docker.version().then(
      (v) => `docker-engine ${v.Version}`,
      (err: unknown) => {
        this.#version = undefined
        throw new InfrastructureError(`cannot reach the Docker Engine: ${String(err)}`, {
          cause: err,
        })
      },
    )
    return this.#version
  }

  async build(req: BuildRequest): Promise<BuildResult> {
    const started = Date.now()
    const builderVersion = await this.version()
    const tail = new LogTail()
    const containers = new BuildContainers()
    const notes: string[] = []
    const emit = (text: string) => {
      tail.write(text)
      containers.observe(text)
      req.onLog(text)
    }

    const binderDir = await findBinderDir(req.contextDir)
    const dockerfile = binderDir ? `${binderDir}/Dockerfile` : 'Dockerfile'
    if (!existsSync(path.join(req.contextDir, dockerfile))) {
      throw new SubmissionFailure(
        'build_failed',
        `this challenge builds from a Dockerfile and the repository has no ${dockerfile}: add one and push a new tag`,
      )
    }
    if (binderDir) {
      notes.push(binderNote(binderDir))
      emit(`[proctor] ${binderNote(binderDir)}\n`)
    }

    const timeout = new AbortController()
    const timer = setTimeout(() => timeout.abort(), req.timeoutMs)
    const signal = AbortSignal.any([timeout.signal, ...(req.signal ? [req.signal] : [])])
    const log = this.#logger.child({ image: req.imageName })
    const network = await resolveBuildNetwork(this.#docker, this.#network, log)
    let error: string | null
    try {
      const stream = await this.#docker.buildImage(
        { context: req.contextDir, src: await listContext(req.contextDir) },
        {
          t: req.imageName,
          dockerfile,
          labels: req.labels,
          buildargs: BUILD_ARGS,
          rm: true,
          forcerm: true,
          ...(network ? { networkmode: network } : {}),
          ...(req.memoryBytes ? { memory: req.memoryBytes, memswap: req.memoryBytes } : {}),
          abortSignal: signal,
        },
      )
      error = await readBuildStream(stream, emit)
    } catch (err) {
      await containers.removeLeftovers(this.#docker, log)
      if (timeout.signal.aborted) throw await timeLimitFailure(this.#docker, req.timeoutMs, tail)
      if (req.signal?.aborted) throw req.signal.reason
      throw await this.#requestFailure(err, tail)
    } finally {
      clearTimeout(timer)
    }

    if (error !== null) {
      await containers.removeLeftovers(this.#docker, log)
      if (ENGINE_TROUBLE.test(error)) {
        throw new InfrastructureError(`the Docker Engine failed the build: ${error}`)
      }
      throw new SubmissionFailure('build_failed', describeBuildError(error, tail), {
        log: tail.text(),
      })
    }

    const image = await checkBuiltImage(this.#docker, req.imageName, req.maxImageBytes, tail)
    log.info(
      { imageId: image.imageId, sizeBytes: image.sizeBytes, durationMs: Date.now() - started },
      'image built',
    )
    return { ...image, builder: 'dockerfile', builderVersion, buildpack: null, notes }
  }

  /**
   * The engine answers some participant mistakes (a Dockerfile syntax error) with HTTP 500
   * before streaming; a request that got no answer at all is the engine's trouble.
   */
  async #requestFailure(err: unknown, tail: LogTail): Promise<Error> {
    const status = (err as { statusCode?: number }).statusCode
    if (status === undefined || !(await isEngineReachable(this.#docker))) {
      return new InfrastructureError(`the Docker Engine did not take the build: ${String(err)}`, {
        cause: err,
      })
    }
    const reason = (err as { json?: { message?: string } }).json?.message ?? String(err)
    if (ENGINE_TROUBLE.test(reason)) {
      return new InfrastructureError(`the Docker Engine failed the build: ${reason}`, {
        cause: err,
      })
    }
    return new SubmissionFailure('build_failed', describeBuildError(reason, tail), {
      log: tail.text(),
    })
  }
}

/**
 * Every file, symlink and empty folder of the context, relative to it. dockerode filters
 * these through `.dockerignore`; it would not filter inside a folder given whole. Symlinks
 * are sent as links, never followed out of the context.
 */
async function listContext(root: string): Promise<string[]> {
  const entries: string[] = []
  const pending = ['']
  for (let rel = pending.pop(); rel !== undefined; rel = pending.pop()) {
    const children = await readdir(path.join(root, rel), { withFileTypes: true })
    if (children.length === 0 && rel !== '') entries.push(rel)
    for (const child of children) {
      const childRel = rel === '' ? child.name : `${rel}/${child.name}`
      if (child.isDirectory()) pending.push(childRel)
      else entries.push(childRel)
    }
  }
  return entries.sort()
}

/**
 * Reads the engine's JSON-lines build output and returns its first error, if any. HTTP 200
 * says nothing: a failed step arrives as an `errorDetail` event in the stream.
 */
function readBuildStream(
  stream: NodeJS.ReadableStream,
  emit: (text: string) => void,
): Promise<string | null> {
  return new Promise((resolve, reject) => {
    let error: string | null = null
    let partial = ''
    const decoder = new TextDecoder()
    const handle = (line: string) => {
      if (line.trim() === '') return
      let event: BuildEvent
      try {
        event = JSON.parse(line) as BuildEvent
      } catch {
        emit(`${line}\n`)
        return
      }
      if (event.stream) emit(event.stream)
      else if (event.status) emit(`${event.status}${event.progress ? ` ${event.progress}` : ''}\n`)
      const message = event.errorDetail?.message ?? event.error
      if (message) {
        error ??= message
        emit(`${message}\n`)
      }
    }
    stream.on('data', (chunk: Buffer) => {
      const lines = (partial + decoder.decode(chunk, { stream: true })).split('\n')
      partial = lines.pop() ?? ''
      lines.forEach(handle)
    })
    stream.on('end', () => {
      handle(partial + decoder.decode())
      resolve(error)
    })
    stream.on('error', reject)
  })
}

interface BuildEvent {
  stream?: string
  status?: string
  progress?: string
  error?: string
  errorDetail?: { message?: string }
}
