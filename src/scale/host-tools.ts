import pino from 'pino'

import type { ProctorConfig } from '../config/proctor-config.ts'
import { systemClock } from '../domain/clock.ts'
import { connectDocker } from '../runtime/docker-client.ts'
import { openStore } from '../store/database.ts'
import { detectCapabilities } from './capabilities.ts'
import { dockerRootDir, DiskGuard, type DiskReading } from './disk-guard.ts'
import { pruneImages } from './image-pruner.ts'
import { markLostWorkers } from './lost-workers.ts'
import { sweepOrphans } from './orphan-containers.ts'

export interface HostReport {
  readonly capabilities: readonly string[]
  readonly runtimes: readonly string[]
  readonly gvisor: boolean
  readonly gpus: boolean
  readonly disks: readonly DiskReading[]
  readonly takesJobs: boolean
}

export interface SweepReport {
  readonly containersRemoved: readonly string[]
  readonly buildersKilled: readonly number[]
  readonly workersLost: readonly string[]
  /** Null unless images were pruned. */
  readonly imagesRemoved: number | null
}

/** The worker-host tools behind `proctor host` and `proctor sweep` (cli-commands.ts). */
export function openHost(config: ProctorConfig) {
  const log = pino({ level: 'warn' })
  const store = openStore(config.database.url)
  const docker = connectDocker(
    config.docker.socketPath ? { socketPath: config.docker.socketPath } : {},
  )
  const ctx = { store, clock: systemClock, log, config }

  return {
    async describe(): Promise<HostReport> {
      const host = await detectCapabilities(docker, config.worker.capabilities, log)
      const root = await dockerRootDir(docker, log)
      const guard = new DiskGuard({ paths: [config.builder.workDir, ...(root ? [root] : [])] }, log)
      const takesJobs = await guard.shouldTakeJobs()
      return { ...host, disks: guard.readings, takesJobs }
    },
    async sweep(prune: boolean): Promise<SweepReport> {
      const swept = await sweepOrphans(ctx, docker, log)
      const workersLost = await markLostWorkers(ctx)
      const pruned = prune ? await pruneImages(ctx, docker, log) : null
      return { ...swept, workersLost, imagesRemoved: pruned ? pruned.removed.length : null }
    },
    close: () => store.close(),
  }
}
