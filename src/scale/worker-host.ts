import type Docker from 'dockerode'
import type { Logger } from 'pino'

import type { AppContext } from '../app/context.ts'
import { errorMessage } from '../domain/errors.ts'
import { dockerRootDir, DiskGuard } from './disk-guard.ts'
import { pruneImages } from './image-pruner.ts'
import { markLostWorkers } from './lost-workers.ts'
import { sweepOrphans } from './orphan-containers.ts'
import { WorkerPresence } from './worker-presence.ts'

/** How often the host's housekeeping runs: orphans, lost workers, image pruning. */
export const HOUSEKEEPING_MS = 15_000

/**
 * Everything a worker process does for its host beside running jobs: it heartbeats its
 * `workers` row, removes what dead attempts left (containers, builder processes), marks
 * silent workers lost, prunes old images, and keeps a disk guard the claim loop asks before
 * taking a job. Started after the worker, stopped before the store closes.
 */
export class WorkerHost {
  readonly diskGuard: DiskGuard
  readonly #ctx: AppContext
  readonly #docker: Docker
  readonly #log: Logger
  readonly #presence: WorkerPresence
  #timer: NodeJS.Timeout | undefined
  #pass: Promise<void> = Promise.resolve()

  constructor(ctx: AppContext, docker: Docker, workerId: string, diskGuard: DiskGuard) {
    this.#ctx = ctx
    this.#docker = docker
    this.#log = ctx.log.child({ part: 'worker-host', workerId })
    this.#presence = new WorkerPresence(ctx, workerId, this.#log)
    this.diskGuard = diskGuard
  }

  /** A guard over the builder's work folder and Docker's data root. */
  static async diskGuardFor(ctx: AppContext, docker: Docker): Promise<DiskGuard> {
    const root = await dockerRootDir(docker, ctx.log)
    const paths = [ctx.config.builder.workDir, ...(root ? [root] : [])]
    return new DiskGuard({ paths }, ctx.log.child({ part: 'disk-guard' }))
  }

  async start(intervalMs = HOUSEKEEPING_MS): Promise<void> {
    this.#presence.start()
    await this.#presence.beat()
    this.#pass = this.#housekeeping()
    await this.#pass
    this.#timer = setInterval(() => {
      this.#pass = this.#housekeeping()
    }, intervalMs)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    this.#presence.stop()
    await this.#pass
  }

  /** One pass; each step on its own so one failing (engine down) does not skip the others. */
  async #housekeeping(): Promise<void> {
    await this.#step('sweep orphans', () => sweepOrphans(this.#ctx, this.#docker, this.#log))
    await this.#step('mark lost workers', () => markLostWorkers(this.#ctx))
    if (!(await this.diskGuard.shouldTakeJobs())) {
      await this.#step('prune images', () =>
        pruneImages(this.#ctx, this.#docker, this.#log, { maxAgeMs: 0 }),
      )
    } else {
      await this.#step('prune images', () => pruneImages(this.#ctx, this.#docker, this.#log))
    }
  }

  async #step(name: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn()
    } catch (err) {
      this.#log.warn({ err: errorMessage(err), step: name }, 'worker housekeeping step failed')
    }
  }
}
