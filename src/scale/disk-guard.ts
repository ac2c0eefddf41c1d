import { statfs } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'

import type Docker from 'dockerode'
import type { Logger } from 'pino'

import { errorMessage } from '../domain/errors.ts'

export interface DiskGuardOptions {
  /** Folders whose file systems must keep room: the builder's workDir, Docker's root. */
  readonly paths: readonly string[]
  /** Below this many free bytes on any of them, stop taking jobs (default 5 GiB). */
  readonly minFreeBytes?: number
  /** …or below this fraction free (default 0.05). */
  readonly minFreeFraction?: number
  /** How long a reading is reused (default 5 s): claims ask often, statfs is cheap but not free. */
  readonly cacheMs?: number
}

export interface DiskReading {
  readonly path: string
  readonly freeBytes: number
  readonly totalBytes: number
}

const GIB = 1024 ** 3

/**
 * Keeps a worker from starting jobs on a host that cannot hold their images and outputs: a
 * build that fills the disk fails half-way, and can take the Docker Engine down with it.
 * Ask `shouldTakeJobs()` before each claim; it says no while any watched file system is
 * below its floor, logs once when that starts and once when it ends, and never throws (an
 * unreadable path counts as full: better idle than crash).
 */
export class DiskGuard {
  readonly #options: Required<DiskGuardOptions>
  readonly #log: Logger
  #checkedAt = 0
  #ok = true
  #last: DiskReading[] = []

  constructor(options: DiskGuardOptions, log: Logger) {
    this.#options = {
      minFreeBytes: 5 * GIB,
      minFreeFraction: 0.05,
      cacheMs: 5_000,
      ...options,
    }
    this.#log = log
  }

  /** The last readings (for /api/workers, logs and the CLI). */
  get readings(): readonly DiskReading[] {
    return this.#last
  }

  async shouldTakeJobs(): Promise<boolean> {
    if (Date.now() - this.#checkedAt < this.#options.cacheMs) return this.#ok
    this.#checkedAt = Date.now()
    this.#last = await Promise.all(this.#options.paths.map(readDisk))
    const low = this.#last.filter((r) => this.#isLow(r))
    const ok = low.length === 0

    if (!ok && this.#ok) {
      this.#log.error(
        { low: low.map(describe) },
        'low on disk: this worker takes no new jobs until space is freed (old images are pruned first)',
      )
    } else if (ok && !this.#ok) {
      this.#log.info({ disks: this.#last.map(describe) }, 'disk space recovered; taking jobs again')
    }
    this.#ok = ok
    return ok
  }

  #isLow(reading: DiskReading): boolean {
    if (reading.totalBytes === 0) return true
    return (
      reading.freeBytes < this.#options.minFreeBytes ||
      reading.freeBytes / reading.totalBytes < this.#options.minFreeFraction
    )
  }
}

/** The file system holding `path`, or its nearest existing parent (a work folder not made yet). */
export async function readDisk(path: string): Promise<DiskReading> {
  let probe = resolve(path)
  for (;;) {
    try {
      const stats = await statfs(probe)
      return { path, freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize }
    } catch {
      const parent = dirname(probe)
      if (parent === probe) return { path, freeBytes: 0, totalBytes: 0 }
      probe = parent
    }
  }
}

/** Docker's data root (`docker info` DockerRootDir), or undefined when the engine is down. */
export async function dockerRootDir(docker: Docker, log: Logger): Promise<string | undefined> {
  try {
    const info = (await docker.info()) as { DockerRootDir?: string }
    return info.DockerRootDir
  } catch (err) {
    log.warn({ err: errorMessage(err) }, 'could not read the Docker root folder from docker info')
    return undefined
  }
}

function describe(r: DiskReading) {
  return {
    path: r.path,
    freeGiB: Math.round((r.freeBytes / GIB) * 10) / 10,
    totalGiB: Math.round((r.totalBytes / GIB) * 10) / 10,
  }
}
