import type { Logger } from 'pino'

import { errorMessage } from '../domain/errors.ts'
import type { Listener, Store } from '../store/database.ts'
import type { JobQueue } from './job-queue.ts'

/**
 * The channel a PostgreSQL trigger (migration 006-job-notify) notifies on whenever a job
 * becomes claimable, with the job's queue as the payload. Delivered on commit only.
 */
export const JOB_CHANNEL = 'proctor_jobs'

/**
 * Wakes this process's idle worker slots within milliseconds of a job becoming claimable in
 * another process (an API enqueuing intake jobs, another worker's retry, the reaper).
 * One listener per process, on a connection of its own. A wake-up is a hint: slots claim
 * from the queues they serve, so a payload naming another queue costs one empty claim.
 *
 * Notifications sent while the connection is down are lost, so the queue is woken on every
 * (re)connection, and slots keep polling (worker.pollMs) in any case. On SQLite this
 * listener never fires: one process owns the database and `JobQueue.wake()` suffices.
 */
export async function wakeOnNewJobs(store: Store, queue: JobQueue, log: Logger): Promise<Listener> {
  let connectedOnce = false
  return store.listen(JOB_CHANNEL, () => queue.wake(), {
    onConnect() {
      if (connectedOnce) log.info('listening for new jobs again')
      connectedOnce = true
      queue.wake()
    },
    onError(err) {
      log.warn(
        { err: errorMessage(err) },
        'lost the connection that hears of new jobs; polling until it is back',
      )
    },
  })
}
