import { sql } from 'kysely'

import type { AppContext } from '../app/context.ts'
import type { QueueDepth } from '../queue/job-queue.ts'

export type OverviewContext = Pick<AppContext, 'store' | 'clock' | 'queue' | 'challenges'>

export interface RunningJob {
  readonly jobId: number
  readonly submissionId: number | null
  readonly workerId: string | null
  readonly state: string | null
  readonly stage: string | null
  /** When the worker claimed it. */
  readonly since: string | null
}

/** One hour of a challenge's finished submissions. */
export interface HourCount {
  /** `2026-01-01T10`: the UTC hour. */
  readonly hour: string
  readonly scored: number
  /** Failed, rejected and cancelled submissions by reason code. */
  readonly failures: Readonly<Record<string, number>>
}

export interface ChallengeOverview {
  readonly id: string
  readonly title: string
  readonly queue: Omit<QueueDepth, 'queue'>
  readonly states: Readonly<Record<string, number>>
  readonly running: readonly RunningJob[]
  readonly hours: readonly HourCount[]
}

export interface Overview {
  readonly now: string
  readonly hours: number
  readonly intake: Omit<QueueDepth, 'queue'>
  readonly challenges: readonly ChallengeOverview[]
}

const EMPTY_QUEUE = { waiting: 0, running: 0, oldest: null, oldestAgeSeconds: null }

/**
 * What the dashboard's first page shows per challenge: queue depth and the oldest waiting
 * job, running jobs and their workers, submissions by state, and finished submissions per
 * hour over the last `hours` (scored, and failures by code), by the time they ended.
 *
 * `challengeIds`: the challenges the caller may see (null: all).
 */
export async function loadOverview(
  ctx: OverviewContext,
  options: { hours: number; challengeIds: readonly string[] | null },
): Promise<Overview> {
  const now = ctx.clock.now()
  const visible = ctx.challenges
    .list()
    .map((c) => c.definition)
    .filter((d) => options.challengeIds === null || options.challengeIds.includes(d.id))
    .sort((a, b) => a.id.localeCompare(b.id))
  const since = new Date(now.getTime() - options.hours * 3_600_000)
  since.setUTCMinutes(0, 0, 0)

  const [depths, states, running, ended] = await Promise.all([
    ctx.queue.depth(),
    countStates(ctx),
    runningJobs(ctx),
    endedPerHour(ctx, since.toISOString()),
  ])
  const hourKeys = hoursBetween(since, now)

  const challenges = visible.map((d): ChallengeOverview => {
    const depth = depths.find((q) => q.queue === d.id)
    return {
      id: d.id,
      title: d.title,
      queue: depth ? withoutQueue(depth) : EMPTY_QUEUE,
      states: Object.fromEntries(
        states.filter((s) => s.challenge_id === d.id).map((s) => [s.state, Number(s.n)]),
      ),
      running: running.filter((j) => j.queue === d.id).map(({ queue: _q, ...job }) => job),
      hours: hourKeys.map((hour) => {
        const rows = ended.filter((e) => e.challenge_id === d.id && e.hour === hour)
        const failures: Record<string, number> = {}
        let scored = 0
        for (const r of rows) {
          if (r.state === 'scored') scored += Number(r.n)
          else
            failures[r.reason_code ?? r.state] =
              (failures[r.reason_code ?? r.state] ?? 0) + Number(r.n)
        }
        return { hour, scored, failures }
      }),
    }
  })
  const intake = depths.find((q) => q.queue === 'intake')
  return {
    now: now.toISOString(),
    hours: options.hours,
    intake: intake ? withoutQueue(intake) : EMPTY_QUEUE,
    challenges,
  }
}

function withoutQueue({ queue: _queue, ...depth }: QueueDepth): Omit<QueueDepth, 'queue'> {
  return depth
}

function countStates(ctx: OverviewContext) {
  return ctx.store.db
    .selectFrom('submissions')
    .select(['challenge_id', 'state', sql<number>`count(*)`.as('n')])
    .groupBy(['challenge_id', 'state'])
    .execute()
}

async function runningJobs(ctx: OverviewContext): Promise<(RunningJob & { queue: string })[]> {
  const rows = await ctx.store.db
    .selectFrom('jobs as j')
    .leftJoin('submissions as s', 's.id', 'j.submission_id')
    .select([
      'j.id',
      'j.queue',
      'j.submission_id',
      'j.worker_id',
      'j.claimed_at',
      's.state',
      's.stage',
    ])
    .where('j.state', '=', 'running')
    .orderBy('j.claimed_at')
    .execute()
  return rows.map((r) => ({
    jobId: Number(r.id),
    queue: r.queue,
    submissionId: r.submission_id === null ? null : Number(r.submission_id),
    workerId: r.worker_id,
    state: r.state,
    stage: r.stage,
    since: r.claimed_at,
  }))
}

/** Submissions that ended since `since`, counted per challenge, UTC hour, state and code. */
function endedPerHour(ctx: OverviewContext, since: string) {
  // ISO-8601 text in both dialects: its first 13 characters are the hour.
  const hour = sql<string>`substr(state_changed_at, 1, 13)`
  return ctx.store.db
    .selectFrom('submissions')
    .select([
      'challenge_id',
      'state',
      'reason_code',
      hour.as('hour'),
      sql<number>`count(*)`.as('n'),
    ])
    .where('state', 'in', ['scored', 'failed', 'rejected', 'cancelled'])
    .where('state_changed_at', '>=', since)
    .groupBy(['challenge_id', 'state', 'reason_code', hour])
    .execute()
}

function hoursBetween(since: Date, now: Date): string[] {
  const keys: string[] = []
  for (let t = since.getTime(); t <= now.getTime(); t += 3_600_000)
    keys.push(new Date(t).toISOString().slice(0, 13))
  return keys
}
