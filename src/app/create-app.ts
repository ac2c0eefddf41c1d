import type Docker from 'dockerode'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'

import { buildServer } from '../api/server.ts'
import { DockerfileBuilder } from '../build/dockerfile-builder.ts'
import { Repo2DockerBuilder } from '../build/repo2docker.ts'
import { ChallengeCatalog } from '../challenges/catalog.ts'
import type { ProctorConfig } from '../config/proctor-config.ts'
import { systemClock, type Clock } from '../domain/clock.ts'
import { runIntakeJob } from '../intake/intake-job.ts'
import { AlertChecker } from '../metrics/alert-checker.ts'
import { loadParticipantsFile } from '../participants/directory.ts'
import { setUpReporting } from '../outbox/reporting.ts'
import { createPlatform } from '../platform/create-platform.ts'
import type { Platform } from '../platform/platform.ts'
import { JobQueue } from '../queue/job-queue.ts'
import { wakeOnNewJobs } from '../queue/notify.ts'
import { connectDocker } from '../runtime/docker-client.ts'
import { DockerRuntime } from '../runtime/docker-runtime.ts'
import { describeWorker, detectCapabilities } from '../scale/capabilities.ts'
import { WorkerHost } from '../scale/worker-host.ts'
import { assertSchemaNotAhead, migrate, openStore, type Listener } from '../store/database.ts'
import { evaluationHandler } from '../worker/evaluate.ts'
import { graderImageResolver } from '../worker/grader-images.ts'
import { Worker } from '../worker/worker.ts'
import type { AppContext } from './context.ts'
import { createLogger } from './logger.ts'

export interface CreateAppOptions {
  clock?: Clock
  log?: Logger
  platform?: Platform
  /** Run the API (default true). */
  api?: boolean
  /** Worker slots in this process (default: config.worker.slots). 0 runs no worker. */
  workerSlots?: number
}

/** One proctor process: context, and optionally the API server and a worker. */
export interface App {
  readonly ctx: AppContext
  readonly docker: Docker
  readonly server: FastifyInstance | null
  readonly worker: Worker | null
  /** Starts listening (API) and working (worker). Returns the API's address. */
  start(): Promise<string | null>
  /** Graceful: the worker finishes its jobs, the server stops accepting, the store closes. */
  close(mode?: 'graceful' | 'immediate'): Promise<void>
}

export async function createApp(
  config: ProctorConfig,
  options: CreateAppOptions = {},
): Promise<App> {
  const log = options.log ?? createLogger({ level: config.log.level, pretty: config.log.pretty })
  const clock = options.clock ?? systemClock

  const store = openStore(config.database.url)
  await assertSchemaNotAhead(store)
  const applied = await migrate(store)
  if (applied.length > 0) log.info({ applied }, 'database migrated')

  const docker = connectDocker(
    config.docker.socketPath ? { socketPath: config.docker.socketPath } : {},
  )
  const dockerfileBuilder = new DockerfileBuilder(docker, log)
  const challenges = ChallengeCatalog.fromDir(
    config.challengesDir,
    log,
    graderImageResolver({ docker, builder: dockerfileBuilder, config, log }),
  )
  const queue = new JobQueue(store, clock)
  const ctx: AppContext = {
    config,
    store,
    clock,
    log,
    queue,
    challenges,
    platform: options.platform ?? createPlatform(config, { store, clock, log }),
  }

  if (config.participantsFile) {
    const loaded = await loadParticipantsFile(
      store.db,
      config.participantsFile,
      clock,
      config.forges.map((f) => f.id),
    )
    log.info(loaded, 'participant directory loaded')
  }

  const server = options.api === false ? null : await buildServer(ctx)
  // The process serving the API checks the alert conditions (src/metrics/alert-checker.ts).
  const alerts = server ? new AlertChecker(ctx, log.child({ part: 'alerts' })) : null
  // The process serving the API dispatches the outbox (platform updates, forge feedback).
  const dispatcher = options.api === false ? null : await setUpReporting(ctx)
  const slots = options.workerSlots ?? config.worker.slots
  // A worker advertises what its host can run (gVisor from the engine, GPUs as configured)
  // and stops claiming while its disks are low (src/scale/).
  const host = slots > 0 ? await detectCapabilities(docker, config.worker.capabilities, log) : null
  const diskGuard = slots > 0 ? await WorkerHost.diskGuardFor(ctx, docker) : null
  const worker =
    slots > 0
      ? new Worker(ctx, {
          slots,
          queues: config.worker.queues,
          capabilities: host?.capabilities ?? config.worker.capabilities,
          queueWeights: config.worker.queueWeights,
          canTakeJobs: diskGuard ? () => diskGuard.shouldTakeJobs() : undefined,
          handlers: {
            intake: (job) => runIntakeJob(ctx, job),
            evaluate: evaluationHandler(ctx, {
              docker,
              runtime: new DockerRuntime(docker, log),
              builders: {
                repo2docker: new Repo2DockerBuilder(config.builder.repo2docker, log, { docker }),
                dockerfile: dockerfileBuilder,
              },
            }),
          },
        })
      : null

  let jobListener: Listener | null = null
  const workerHost = worker && diskGuard ? new WorkerHost(ctx, docker, worker.id, diskGuard) : null
  return {
    ctx,
    docker,
    server,
    worker,
    async start() {
      let address: string | null = null
      if (server)
        address = await server.listen({ host: config.server.host, port: config.server.port })
      if (worker) await worker.start()
      // PostgreSQL: hear of jobs enqueued by other processes at once (src/queue/notify.ts).
      if (worker) jobListener = await wakeOnNewJobs(store, queue, log)
      if (worker && host)
        log.info(
          describeWorker({ workerId: worker.id, queues: config.worker.queues, slots, host }),
          'worker serving',
        )
      await workerHost?.start()
      dispatcher?.start()
      alerts?.start()
      log.info({ address, workerSlots: slots, database: store.dialect }, 'proctor started')
      return address
    },
    async close(mode = 'graceful') {
      await alerts?.stop()
      await server?.close()
      await worker?.stop(mode)
      await jobListener?.close()
      await workerHost?.stop()
      await dispatcher?.stop(mode)
      await store.close()
    },
  }
}
