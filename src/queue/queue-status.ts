import type { Executor } from '../store/transaction.ts'
import type { QueueDepth } from './types.ts'

/** Where a waiting job stands in its queue. */
export interface QueuePosition {
  jobId: number
  queue: string
  /** 1 for the next job the queue serves. */
  position: number
  /** Waiting jobs the queue would serve before this one. */
  ahead: number
  /** Jobs of this queue running now. */
  running: number
  /**
   * A rough start time (ISO-8601 UTC): the jobs ahead, spread over as many workers as run
   * this queue's jobs now, at the queue's average run time. Null before any job of the
   * queue has finished.
   */
  estimatedStart: string | null
}

/**
 * The position is counted in the order a claim takes jobs now (priority, fair turn, id). It
 * can move back as well as forward: a participant arriving later takes turns with those
 * already waiting, so a heavy user's later jobs move back as others join. Jobs skipped for a
 * capability, an in-flight cap or a backoff are still counted ahead.
 */
export async function queuePosition(
  db: Executor,
  submissionId: number,
  now: Date,
): Promise<QueuePosition | null> {
  const job = await db
    .selectFrom('jobs')
    .select(['id', 'queue', 'priority', 'fair_seq', 'run_after'])
    .where('submission_id', '=', submissionId)
    .where('state', '=', 'waiting')
    .orderBy('id', 'desc')
    .executeTakeFirst()
  if (!job) return null

  const counts = await db
    .selectNoFrom((eb) => [
      eb
        .selectFrom('jobs')
        .select((inner) => inner.fn.countAll<number>().as('n'))
        .where('queue', '=', job.queue)
        .where('state', '=', 'waiting')
        .where((w) =>
          w.or([
            w('priority', '>', job.priority),
            w.and([
              w('priority', '=', job.priority),
              w.or([
                w('fair_seq', '<', job.fair_seq),
                w.and([w('fair_seq', '=', job.fair_seq), w('id', '<', job.id)]),
              ]),
            ]),
          ]),
        )
        .as('ahead'),
      eb
        .selectFrom('jobs')
        .select((inner) => inner.fn.countAll<number>().as('n'))
        .where('queue', '=', job.queue)
        .where('state', '=', 'running')
        .as('running'),
      eb.selectFrom('job_queues').select('run_ms_avg').where('queue', '=', job.queue).as('runMs'),
    ])
    .executeTakeFirstOrThrow()

  const ahead = Number(counts.ahead ?? 0)
  const running = Number(counts.running ?? 0)
  const runMs = counts.runMs === null ? null : Number(counts.runMs)
  return {
    jobId: Number(job.id),
    queue: job.queue,
    position: ahead + 1,
    ahead,
    running,
    estimatedStart: estimateStart({
      ahead,
      running,
      runMs,
      now,
      runAfter: new Date(job.run_after),
    }),
  }
}

function estimateStart(input: {
  ahead: number
  running: number
  runMs: number | null
  now: Date
  runAfter: Date
}): string | null {
  const { ahead, running, runMs, now, runAfter } = input
  if (runMs === null) return null
  // Running jobs are on average half done; each later wave takes a full run time.
  const workers = Math.max(1, running)
  const waves = Math.floor(ahead / workers) + (running > 0 ? 0.5 : 0)
  const start = Math.max(now.getTime() + waves * runMs, runAfter.getTime())
  return new Date(start).toISOString()
}

/**
 * Jobs waiting and running per queue, and the oldest waiting one's age. Counted per queue
 * along the jobs_claim index (queue, state, …), so the cost is the number of waiting and
 * running jobs, never the history of finished ones, and no table rows are read but one per
 * queue. The oldest waiting job is the one with the lowest id.
 */
export async function queueDepth(db: Executor, now: Date, queue?: string): Promise<QueueDepth[]> {
  let query = db
    .selectFrom('job_queues as q')
    .select((eb) => {
      const inState = (state: 'waiting' | 'running') =>
        eb.selectFrom('jobs as j').whereRef('j.queue', '=', 'q.queue').where('j.state', '=', state)
      return [
        'q.queue',
        inState('waiting')
          .select((c) => c.fn.countAll<number>().as('n'))
          .as('waiting'),
        inState('running')
          .select((c) => c.fn.countAll<number>().as('n'))
          .as('running'),
        eb
          .selectFrom('jobs as o')
          .select('o.created_at')
          .where(
            'o.id',
            '=',
            inState('waiting').select((c) => c.fn.min('j.id').as('id')),
          )
          .as('oldest'),
      ]
    })
    .orderBy('q.queue')
  if (queue) query = query.where('q.queue', '=', queue)
  const rows = await query.execute()

  return rows
    .map((r) => ({
      queue: r.queue,
      waiting: Number(r.waiting ?? 0),
      running: Number(r.running ?? 0),
      oldest: r.oldest ?? null,
      oldestAgeSeconds:
        r.oldest == null ? null : Math.max(0, (now.getTime() - Date.parse(r.oldest)) / 1000),
    }))
    .filter((d) => d.waiting > 0 || d.running > 0)
}
