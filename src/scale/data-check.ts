import { ProctorError } from '../domain/errors.ts'

/**
 * This worker's copy of a challenge's hidden data is not the one recorded on the submission.
 * Not the submission's fault and not a reason to spend its attempts: the job goes back for
 * a worker whose data matches, and this worker stops serving that challenge until it
 * restarts with synced data.
 */
export class DataMismatchError extends ProctorError {
  readonly challengeId: string

  constructor(challengeId: string, local: string, recorded: string | null) {
    super(
      'data_mismatch',
      `this worker's data for challenge ${challengeId} (${local}) differs from the one recorded ` +
        `on the submission (${recorded ?? 'none'}); the job was released for another worker. ` +
        `Sync the challenge data on this host and restart the worker to serve ${challengeId} again`,
    )
    this.challengeId = challengeId
  }
}

/**
 * The queues a worker should claim from: the configured ones (every known queue for `*`)
 * less the challenges it found itself unable to run. Null means "as configured".
 */
export function servableQueues(
  configured: readonly string[],
  known: readonly string[],
  unable: ReadonlySet<string>,
): readonly string[] | null {
  if (unable.size === 0) return null
  const base = configured.includes('*') ? known : configured
  return base.filter((queue) => !unable.has(queue))
}
