import { spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

import type { Logger } from 'pino'
import YAML from 'yaml'

import { baseEnv, runProcess } from '../build/run-process.ts'
import type { ProctorConfig } from '../config/proctor-config.ts'
import { errorMessage, InfrastructureError, ProctorError } from '../domain/errors.ts'
import { registryUrl } from './registry-manifests.ts'

/**
 * The registry as a service proctor administers: the `docker-registry serve` process that
 * scripts/services.sh starts (its config file, its pid file), switched read-only and back
 * for garbage collection, and `docker-registry garbage-collect` itself.
 *
 * A registry proctor did not start (systemd, a container) has no pid file here: switching it
 * is refused with what to do instead.
 */
export interface RegistryAdminConfig {
  /** `host:port`, as pushes use it. */
  readonly address: string
  /** The registry's own configuration (`.proctor/registry/config.yml`). */
  readonly configFile: string
  /** Where the running registry's pid is (`.proctor/run/registry.pid`). */
  readonly pidFile: string
  readonly logFile: string
  readonly binary: string
}

/**
 * Where scripts/services.sh keeps the registry, under PROCTOR_HOME (default `.proctor` in
 * the working folder). Each can be set: PROCTOR_REGISTRY_CONFIG, PROCTOR_REGISTRY_PID_FILE,
 * PROCTOR_REGISTRY_LOG, PROCTOR_REGISTRY_BIN.
 */
export function registryAdminConfig(
  config: ProctorConfig,
  env: NodeJS.ProcessEnv = process.env,
): RegistryAdminConfig {
  const home = path.resolve(env.PROCTOR_HOME ?? '.proctor')
  return {
    address: config.registry.address,
    configFile: env.PROCTOR_REGISTRY_CONFIG ?? path.join(home, 'registry/config.yml'),
    pidFile: env.PROCTOR_REGISTRY_PID_FILE ?? path.join(home, 'run/registry.pid'),
    logFile: env.PROCTOR_REGISTRY_LOG ?? path.join(home, 'run/registry.log'),
    binary: env.PROCTOR_REGISTRY_BIN ?? 'docker-registry',
  }
}

export type RegistryMode = 'read-only' | 'read-write'

export interface GarbageCollectOutput {
  readonly blobsMarked: number | null
  readonly blobsEligible: number | null
  readonly manifestsEligible: number | null
  /** The end of the command's output. */
  readonly output: string
  readonly durationMs: number
}

const STOP_TIMEOUT_MS = 10_000
const START_TIMEOUT_MS = 15_000
const GC_TIMEOUT_MS = 60 * 60_000
const OUTPUT_LINES_KEPT = 60

export class RegistryService {
  readonly #config: RegistryAdminConfig
  readonly #log: Logger

  constructor(config: RegistryAdminConfig, log: Logger) {
    this.#config = config
    this.#log = log.child({ part: 'registry-service', registry: config.address })
  }

  get config(): RegistryAdminConfig {
    return this.#config
  }

  /** The storage root of a filesystem registry; null for other drivers (S3). */
  async dataDir(): Promise<string | null> {
    const parsed = await this.#readConfig()
    const root = (parsed.storage as { filesystem?: { rootdirectory?: unknown } } | undefined)
      ?.filesystem?.rootdirectory
    return typeof root === 'string' ? root : null
  }

  async isUp(): Promise<boolean> {
    try {
      const response = await fetch(`${registryUrl(this.#config.address)}/v2/`, {
        signal: AbortSignal.timeout(2_000),
      })
      return response.status < 500
    } catch {
      return false
    }
  }

  /**
   * Restarts the registry read-only (a copy of its config with
   * `storage.maintenance.readonly.enabled: true`, so pulls go on and writes get 405) or
   * with its own config again.
   */
  async restart(mode: RegistryMode): Promise<void> {
    const started = Date.now()
    const configFile =
      mode === 'read-only' ? await this.#writeReadOnlyConfig() : this.#config.configFile
    await this.#stop()
    const pid = await this.#start(configFile)
    this.#log.info({ mode, pid, durationMs: Date.now() - started }, 'registry restarted')
  }

  /** Runs `docker-registry garbage-collect` on the registry's own config. */
  async garbageCollect(
    options: { dryRun?: boolean; signal?: AbortSignal } = {},
  ): Promise<GarbageCollectOutput> {
    const args = [
      'garbage-collect',
      ...(options.dryRun ? ['--dry-run'] : []),
      this.#config.configFile,
    ]
    let result
    try {
      result = await runProcess(this.#config.binary, args, {
        env: baseEnv(),
        timeoutMs: GC_TIMEOUT_MS,
        signal: options.signal,
        keepChars: 256 * 1024,
      })
    } catch (err) {
      throw new InfrastructureError(
        `cannot run ${this.#config.binary} garbage-collect: ${errorMessage(err)}`,
        { cause: err },
      )
    }
    const output = `${result.stdout}\n${result.stderr}`
    const tail = output.trim().split('\n').slice(-OUTPUT_LINES_KEPT).join('\n')
    if (result.code !== 0) {
      throw new InfrastructureError(
        `${this.#config.binary} garbage-collect failed (exit ${result.code ?? result.signal}): ${tail.slice(-2000)}`,
      )
    }
    const counts = /(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion/.exec(
      output,
    )
    return {
      blobsMarked: counts ? Number(counts[1]) : null,
      blobsEligible: counts ? Number(counts[2]) : null,
      manifestsEligible: counts ? Number(counts[3]) : null,
      output: tail,
      durationMs: result.durationMs,
    }
  }

  async #readConfig(): Promise<Record<string, unknown>> {
    let text: string
    try {
      text = await readFile(this.#config.configFile, 'utf8')
    } catch (err) {
      throw new ProctorError(
        'registry_config_missing',
        `cannot read the registry's config ${this.#config.configFile}: ${errorMessage(err)}; set PROCTOR_REGISTRY_CONFIG to it`,
        { cause: err },
      )
    }
    const parsed: unknown = YAML.parse(text)
    if (typeof parsed !== 'object' || parsed === null) {
      throw new ProctorError(
        'registry_config_invalid',
        `${this.#config.configFile} is not a registry configuration`,
      )
    }
    return parsed as Record<string, unknown>
  }

  async #writeReadOnlyConfig(): Promise<string> {
    const config = await this.#readConfig()
    const storage = record(config.storage)
    const maintenance = record(storage.maintenance)
    const readonly = { ...record(maintenance.readonly), enabled: true }
    const file = path.join(
      path.dirname(this.#config.configFile),
      `${path.basename(this.#config.configFile, path.extname(this.#config.configFile))}.readonly.yml`,
    )
    const text = YAML.stringify({
      ...config,
      storage: { ...storage, maintenance: { ...maintenance, readonly } },
    })
    await writeFile(
      file,
      `# Written by proctor for garbage collection; the registry's own config is ${this.#config.configFile}.\n${text}`,
    )
    return file
  }

  async #stop(): Promise<void> {
    const pid = this.#runningPid()
    if (pid === null) {
      if (await this.isUp()) {
        throw new ProctorError(
          'registry_not_managed',
          `the registry at ${this.#config.address} answers but ${this.#config.pidFile} names no running ${path.basename(this.#config.binary)}: it was not started by scripts/services.sh. Make it read-only yourself (storage.maintenance.readonly.enabled: true), run \`docker-registry garbage-collect <config>\`, then restore it`,
        )
      }
      return
    }
    process.kill(pid, 'SIGTERM')
    if (await waitForExit(pid, STOP_TIMEOUT_MS)) return
    this.#log.warn({ pid }, 'the registry did not stop on SIGTERM; killing it')
    process.kill(pid, 'SIGKILL')
    if (!(await waitForExit(pid, STOP_TIMEOUT_MS))) {
      throw new InfrastructureError(
        `the registry (pid ${pid}) did not stop; stop it by hand and run scripts/services.sh start`,
      )
    }
  }

  async #start(configFile: string): Promise<number> {
    const log = openSync(this.#config.logFile, 'a')
    let child
    try {
      child = spawn(this.#config.binary, ['serve', configFile], {
        detached: true,
        stdio: ['ignore', log, log],
        env: baseEnv(),
      })
    } finally {
      closeSync(log)
    }
    child.unref()
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    )
    child.once('error', () => undefined)
    const pid = child.pid
    if (pid === undefined)
      throw new InfrastructureError(`cannot start ${this.#config.binary}: no process was created`)
    await writeFile(this.#config.pidFile, `${pid}\n`)

    const deadline = Date.now() + START_TIMEOUT_MS
    while (Date.now() < deadline) {
      if (await this.isUp()) return pid
      const code = await Promise.race([exited, sleep(100).then(() => undefined)])
      if (code !== undefined) {
        throw new InfrastructureError(
          `the registry exited (code ${code}) right after starting with ${configFile}; see ${this.#config.logFile}, then run scripts/services.sh start`,
        )
      }
    }
    throw new InfrastructureError(
      `the registry did not answer within ${START_TIMEOUT_MS / 1000} s after a restart; see ${this.#config.logFile}`,
    )
  }

  /** The pid in the pid file, if that process is alive and is the registry. */
  #runningPid(): number | null {
    if (!existsSync(this.#config.pidFile)) return null
    const pid = Number(readFileSync(this.#config.pidFile, 'utf8').trim())
    if (!Number.isInteger(pid) || pid <= 0) return null
    let cmdline: string
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ')
    } catch {
      return null
    }
    // A pid file outlives its process and pids are reused: only the registry is stopped.
    return cmdline.includes(path.basename(this.#config.binary)) && cmdline.includes('serve')
      ? pid
      : null
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true
    await sleep(50)
  }
  return !isAlive(pid)
}

function isAlive(pid: number): boolean {
  try {
    // A zombie still answers signal 0; its /proc status says so.
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    return !/^State:\s+Z/m.test(status)
  } catch {
    return false
  }
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {}
}
