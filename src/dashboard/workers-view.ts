import type { AppContext } from '../app/context.ts'
import { parseJson } from '../store/transaction.ts'

export interface WorkerView {
  readonly id: string
  readonly host: string
  /** As recorded by the worker. */
  readonly state: 'alive' | 'stopped' | 'lost'
  /** Alive and heard from within `alerts.workerSilentSeconds`; false for a silent or ended one. */
  readonly healthy: boolean
  readonly slots: number
  readonly queues: readonly string[]
  readonly capabilities: readonly string[]
  readonly startedAt: string
  readonly heartbeatAt: string
  readonly heartbeatAgeSeconds: number
  readonly running: readonly {
    readonly jobId: number
    readonly kind: string
    readonly queue: string
    readonly submissionId: number | null
    readonly stage: string | null
    readonly since: string | null
  }[]
}

/** Workers alive now, and those that ended within the last day. */
export async function listWorkers(
  ctx: Pick<AppContext, 'store' | 'clock' | 'config'>,
): Promise<WorkerView[]> {
  const { db } = ctx.store
  const now = ctx.clock.now()
  const dayAgo = new Date(now.getTime() - 86_400_000).toISOString()
  const [workers, jobs] = await Promise.all([
    db
      .selectFrom('workers')
      .selectAll()
      .where((eb) => eb.or([eb('state', '=', 'alive'), eb('heartbeat_at', '>', dayAgo)]))
      .orderBy('started_at', 'desc')
      .execute(),
    db
      .selectFrom('jobs as j')
      .leftJoin('submissions as s', 's.id', 'j.submission_id')
      .select([
        'j.id',
        'j.kind',
        'j.queue',
        'j.worker_id',
        'j.submission_id',
        'j.claimed_at',
        's.stage',
      ])
      .where('j.state', '=', 'running')
      .execute(),
  ])
  const silentAfter = ctx.config.alerts.workerSilentSeconds
  return workers.map((w) => {
    const age = Math.max(0, (now.getTime() - Date.parse(w.heartbeat_at)) / 1000)
    return {
      id: w.id,
      host: w.host,
      state: w.state,
      healthy: w.state === 'alive' && age <= silentAfter,
      slots: w.slots,
      queues: parseJson<string[]>(w.queues_json, []),
      capabilities: parseJson<string[]>(w.capabilities_json, []),
      startedAt: w.started_at,
      heartbeatAt: w.heartbeat_at,
      heartbeatAgeSeconds: Math.round(age),
      running: jobs
        .filter((j) => j.worker_id === w.id)
        .map((j) => ({
          jobId: Number(j.id),
          kind: j.kind,
          queue: j.queue,
          submissionId: j.submission_id === null ? null : Number(j.submission_id),
          stage: j.stage,
          since: j.claimed_at,
        })),
    }
  })
}
