import type { Logger } from 'pino'

import type { ChallengeCatalog } from '../challenges/catalog.ts'
import type { ProctorConfig } from '../config/proctor-config.ts'
import type { Clock } from '../domain/clock.ts'
import type { Platform } from '../platform/platform.ts'
import type { JobQueue } from '../queue/job-queue.ts'
import type { Store } from '../store/database.ts'

/**
 * What every part of proctor is handed: configuration, store, clock, logger, queue,
 * challenges and platform. Built once per process (src/app/create-app.ts) and by tests with
 * their own store and clock.
 */
export interface AppContext {
  readonly config: ProctorConfig
  readonly store: Store
  readonly clock: Clock
  readonly log: Logger
  readonly queue: JobQueue
  readonly challenges: ChallengeCatalog
  readonly platform: Platform
}
