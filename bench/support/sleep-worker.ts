import pino from 'pino'

import type { AppContext } from '../../src/app/context.ts'
import { parseConfig } from '../../src/config/proctor-config.ts'
import { systemClock } from '../../src/domain/clock.ts'
import { JobQueue } from '../../src/queue/job-queue.ts'
import { wakeOnNewJobs } from '../../src/queue/notify.ts'
import { openStore } from '../../src/store/database.ts'
import { Worker } from '../../src/worker/worker.ts'

/**
 * One benchmark worker process: proctor's real Worker loop (claim, lease, heartbeat,
 * complete) and its LISTEN/NOTIFY wake-up, on PostgreSQL, with a synthetic job whose work is
 * a sleep of a fixed time instead of a build and containers. Prints `ready` once serving.
 *
 *   node --import tsx bench/support/sleep-worker.ts <database url> <slots> <job ms>
 */
const [url = '', slotsText = '2', jobMsText = '2000'] = process.argv.slice(2)
const log = pino({ level: 'warn' })
const store = openStore(url)
const queue = new JobQueue(store, systemClock)
const config = parseConfig({ database: { url }, worker: { leaseSeconds: 30 } }, { env: {} })
// The worker loop reads only these parts of the context.
const ctx = { config, store, clock: systemClock, log, queue } as unknown as AppContext
const jobMs = Number(jobMsText)

const worker = new Worker(ctx, {
  slots: Number(slotsText),
  queues: ['bench'],
  capabilities: [],
  kinds: ['intake'],
  handlers: {
    intake: async (job) => {
      await new Promise((resolve) => setTimeout(resolve, jobMs))
      await queue.withLease(job, (trx) => queue.complete(trx, job))
    },
  },
})
await worker.start()
const listener = await wakeOnNewJobs(store, queue, log)
console.log('ready')

process.on('SIGTERM', () => {
  void (async () => {
    await worker.stop('immediate')
    await listener.close()
    await store.close()
    process.exit(0)
  })()
})
