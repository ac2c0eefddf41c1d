import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import Docker from 'dockerode'
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
import { parseRepo2DockerLine } from './repo2docker-log.ts'
import { baseEnv, runProcess, type RunProcessResult } from './run-process.ts'

export { detectBuildpack, type BuildpackDetection } from './detect-buildpack.ts'

export interface Repo2DockerBuilderOptions {
  /** Engine client used to inspect the image; defaults to DOCKER_HOST or the local socket. */
  docker?: Docker
  /** DOCKER_HOST for repo2docker; defaults to proctor's own DOCKER_HOST, if any. */
  dockerHost?: string
  /** The network build steps run on (see build-network.ts); defaults to `proctor-build`. */
  network?: BuildNetworkOption
}

/** uid 0 is refused by repo2docker; these match the container contract's participant user. */
const USER_ID = '1000'
const USER_NAME = 'participant'
const VERSION_TIMEOUT_MS = 30_000

/**
 * Python errors that mean repo2docker itself is broken (a bad dependency, a bug), not the
 * repository: the build is retried as proctor's trouble rather than charged.
 */
const BUILDER_BUGS = new Set([
  'AttributeError',
  'ImportError',
  'ModuleNotFoundError',
  'NameError',
  'TypeError',
  'AssertionError',
  'SyntaxError',
  'ConnectionError',
  'ProtocolError',
  'ReadTimeout',
])

/** Engine trouble that can surface as a build step's error. */
const ENGINE_TROUBLE =
  /no space left on device|failed to register layer|error creating overlay mount|cannot connect to the docker daemon/i

/**
 * Builds with repo2docker 2024.07.0 (the last release that builds through the Engine API, so
 * a Dockerfile `FROM` a local image builds offline), run as a child process.
 */
export class Repo2DockerBuilder implements Builder {
  readonly name = 'repo2docker' as const
  readonly #binary: string
  readonly #logger: Logger
  readonly #docker: Docker
  readonly #dockerHost: string | undefined
  readonly #network: BuildNetworkOption
  #version: Promise<string> | undefined

  constructor(binary: string, logger: Logger, options: Repo2DockerBuilderOptions = {}) {
    this.#binary = binary
    this.#logger = logger.child({ builder: 'repo2docker' })
    this.#docker = options.docker ?? new Docker({ version: 'v1.41' })
    this.#dockerHost = options.dockerHost ?? process.env.DOCKER_HOST
    this.#network = options.network === undefined ? BUILD_NETWORK : options.network
  }

  version(): Promise<string> {
    this.#version ??= this.#readVersion().catch((err: unknown) => {
      this.#version = undefined
      throw err
    })
    return this.#version
  }

  async build(req: BuildRequest): Promise<BuildResult> {
    const started = Date.now()
    const builderVersion = await this.version()
    const tail = new LogTail()
    const containers = new BuildContainers()
    const notes: string[] = []
    const emit = (text: string) => {
      if (text === '') return
      tail.write(text)
      containers.observe(text)
      req.onLog(text)
    }

    const binderDir = await findBinderDir(req.contextDir)
    if (binderDir) {
      notes.push(binderNote(binderDir))
      emit(`[proctor] ${binderNote(binderDir)}\n`)
    }

    let buildpack: string | null = null
    let engineUnreachable = false
    let exception: string | null = null
    let failure: string | null = null
    const onLine = (line: string) => {
      const parsed = parseRepo2DockerLine(line)
      emit(parsed.text)
      buildpack = parsed.buildpack ?? buildpack
      engineUnreachable ||= parsed.engineUnreachable
      exception = parsed.exception ?? exception
      if (parsed.traceback)
        this.#logger.debug({ traceback: parsed.traceback }, 'repo2docker raised')
      if (parsed.phase === 'failed' && parsed.text !== '') failure ??= parsed.text.trim()
    }

    const network = await resolveBuildNetwork(
      this.#docker,
      this.#network,
      this.#logger.child({ image: req.imageName }),
    )
    // A throwaway HOME and DOCKER_CONFIG: the docker SDK would otherwise send every
    // credential in ~/.docker/config.json to the engine with the build.
    const home = await mkdtemp(path.join(os.tmpdir(), 'proctor-r2d-'))
    let result: RunProcessResult
    try {
      result = await runProcess(this.#binary, this.#args(req, network), {
        // repo2docker loads `repo2docker_config.py` (Python) from its working folder: never
        // let that be anything but an empty folder of proctor's.
        cwd: home,
        env: baseEnv({
          HOME: home,
          DOCKER_CONFIG: home,
          DOCKER_HOST: this.#dockerHost,
          DOCKER_TLS_VERIFY: process.env.DOCKER_TLS_VERIFY,
          DOCKER_CERT_PATH: process.env.DOCKER_CERT_PATH,
          PYTHONUNBUFFERED: '1',
        }),
        timeoutMs: req.timeoutMs,
        signal: req.signal,
        onStdoutLine: onLine,
        onStderrLine: onLine,
      })
    } catch (err) {
      if (req.signal?.aborted) throw err
      throw new InfrastructureError(`cannot run ${this.#binary}: ${String(err)}`, { cause: err })
    } finally {
      await rm(home, { recursive: true, force: true })
    }

    const log = this.#logger.child({ image: req.imageName })
    if (result.code !== 0) await containers.removeLeftovers(this.#docker, log)
    if (result.timedOut) throw await timeLimitFailure(this.#docker, req.timeoutMs, tail)
    if (result.aborted) throw req.signal?.reason
    if (result.code !== 0) {
      throw await this.#classifyFailure(result, { engineUnreachable, exception, failure }, tail)
    }

    const image = await checkBuiltImage(this.#docker, req.imageName, req.maxImageBytes, tail)
    log.info(
      {
        imageId: image.imageId,
        sizeBytes: image.sizeBytes,
        buildpack,
        durationMs: Date.now() - started,
      },
      'image built',
    )
    return { ...image, builder: 'repo2docker', builderVersion, buildpack, notes }
  }

  #args(req: BuildRequest, network: string | null): string[] {
    // An untagged name would let repo2docker reuse an old image of that name instead of
    // building ("Reusing existing image"), so the tag is always explicit.
    const lastPart = req.imageName.split('/').at(-1) ?? ''
    const imageName = lastPart.includes(':') ? req.imageName : `${req.imageName}:latest`
    // `--flag=value` keeps a value that starts with '-' from being read as a flag.
    return [
      '--no-run',
      '--json-logs',
      `--user-id=${USER_ID}`,
      `--user-name=${USER_NAME}`,
      `--image-name=${imageName}`,
      ...Object.entries(req.labels).map(([key, value]) => `--label=${key}=${value}`),
      ...(req.memoryBytes ? [`--build-memory-limit=${req.memoryBytes}`] : []),
      // docker-py's `APIClient.build(network_mode=…)`, the Engine API's `networkmode`. A Dict
      // traitlet given twice on the command line merges, so the `nocache=True` the verify
      // wrapper (src/archive/no-cache-builders.ts) puts before these arguments still holds.
      ...(network ? [`--Repo2Docker.extra_build_kwargs=network_mode=${network}`] : []),
      path.resolve(req.contextDir),
    ]
  }

  async #classifyFailure(
    result: RunProcessResult,
    seen: { engineUnreachable: boolean; exception: string | null; failure: string | null },
    tail: LogTail,
  ): Promise<Error> {
    const summary =
      seen.failure?.replace(/^Error during build: /, '') ?? `exit ${result.code ?? result.signal}`
    if (seen.engineUnreachable || !(await isEngineReachable(this.#docker))) {
      return new InfrastructureError(`repo2docker could not reach the Docker Engine: ${summary}`)
    }
    if (result.signal) {
      return new InfrastructureError(
        `repo2docker was killed by ${result.signal} (out of memory on the build host?)`,
      )
    }
    if ((seen.exception && BUILDER_BUGS.has(seen.exception)) || ENGINE_TROUBLE.test(summary)) {
      return new InfrastructureError(
        `repo2docker ${await this.version()} failed on its own: ${summary}`,
      )
    }
    return new SubmissionFailure('build_failed', describeBuildError(summary, tail), {
      log: tail.text(),
    })
  }

  async #readVersion(): Promise<string> {
    let result: RunProcessResult
    try {
      result = await runProcess(this.#binary, ['--version'], {
        env: baseEnv(),
        timeoutMs: VERSION_TIMEOUT_MS,
      })
    } catch (err) {
      throw new InfrastructureError(`cannot run ${this.#binary}: ${String(err)}`, { cause: err })
    }
    const version = result.stdout.trim() || result.stderr.trim()
    if (result.code !== 0 || !/^\d{4}\.\d+\.\d+/.test(version)) {
      throw new InfrastructureError(
        `${this.#binary} --version did not print a version (exit ${result.code}): ${version.slice(0, 200)}`,
      )
    }
    return version
  }
}
