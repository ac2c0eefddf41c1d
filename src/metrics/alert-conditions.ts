import { sql } from 'kysely'

import type { AppContext } from '../app/context.ts'
import { formatAge } from './age.ts'
import type { AlertsConfig } from './alerts-config.ts'
import { diskSpace } from './disk-space.ts'

export const ALERT_KINDS = [
  'submission_stuck',
  'worker_lost',
  'outbox_stuck',
  'outbox_dead',
  'disk_low',
] as const
export type AlertKind = (typeof ALERT_KINDS)[number]

/**
 * One condition an operator must act on, as it stands now. `key` names it across checks
 * (`submission_stuck:queued`, `worker_lost:<worker id>`…), so a notifier can tell a new
 * condition from one that lasts.
 */
export interface AlertCondition {
  readonly key: string
  readonly kind: AlertKind
  readonly severity: 'warning' | 'critical'
  /** One line saying what, how many, since when and what to do. */
  readonly summary: string
  /** When it began, as far as the store tells. */
  readonly since: string | null
  /** Submission ids, worker ids, outbox targets or paths concerned (at most 20). */
  readonly subjects: readonly string[]
}

export type AlertContext = Pick<AppContext, 'store' | 'clock' | 'config'>

const NON_TERMINAL = ['received', 'queued', 'building', 'evaluating'] as const
const SHOWN = 20

/** Every condition that holds now. Cheap: a few indexed queries and one statfs. */
export async function evaluateAlerts(ctx: AlertContext): Promise<AlertCondition[]> {
  const config = ctx.config.alerts
  const now = ctx.clock.now()
  const found = await Promise.all([
    stuckSubmissions(ctx, config, now),
    lostWorkers(ctx, config, now),
    stuckOutbox(ctx, config, now),
    lowDisk(ctx, config),
  ])
  return found.flat()
}

async function stuckSubmissions(
  ctx: AlertContext,
  config: AlertsConfig,
  now: Date,
): Promise<AlertCondition[]> {
  const conditions: AlertCondition[] = []
  for (const state of NON_TERMINAL) {
    const limit = config.stuckSeconds[state]
    const before = new Date(now.getTime() - limit * 1000).toISOString()
    const rows = await ctx.store.db
      .selectFrom('submissions')
      .select(['id', 'challenge_id', 'state_changed_at'])
      .where('state', '=', state)
      .where('state_changed_at', '<', before)
      .orderBy('state_changed_at')
      .limit(SHOWN + 1)
      .execute()
    const oldest = rows[0]
    if (!oldest) continue
    const listed = rows
      .slice(0, 5)
      .map(
        (r) =>
          `#${r.id} (${r.challenge_id ?? 'no challenge'}, ${formatAge(now, r.state_changed_at)})`,
      )
    const count = rows.length > SHOWN ? `more than ${SHOWN}` : String(rows.length)
    conditions.push({
      key: `submission_stuck:${state}`,
      kind: 'submission_stuck',
      severity: state === 'received' ? 'critical' : 'warning',
      summary:
        `${count} submission(s) ${state} for longer than ${formatSeconds(limit)}: ${listed.join(', ')}` +
        `${rows.length > 5 ? ', …' : ''}. ${STUCK_HINT[state]}`,
      since: new Date(Date.parse(oldest.state_changed_at) + limit * 1000).toISOString(),
      subjects: rows.slice(0, SHOWN).map((r) => String(r.id)),
    })
  }
  return conditions
}

const STUCK_HINT: Record<(typeof NON_TERMINAL)[number], string> = {
  received: 'Intake is not running: check that a worker serves the intake queue.',
  queued: 'Check that workers serve these challenges, and the queue depth.',
  building: 'Check the worker holding them and the Docker Engine.',
  evaluating: 'Check the worker holding them and its containers.',
}

async function lostWorkers(
  ctx: AlertContext,
  config: AlertsConfig,
  now: Date,
): Promise<AlertCondition[]> {
  const before = new Date(now.getTime() - config.workerSilentSeconds * 1000).toISOString()
  const rows = await ctx.store.db
    .selectFrom('workers as w')
    .select([
      'w.id',
      'w.host',
      'w.heartbeat_at',
      (eb) =>
        eb
          .selectFrom('jobs')
          .select(sql<number>`count(*)`.as('n'))
          .whereRef('jobs.worker_id', '=', 'w.id')
          .where('jobs.state', '=', 'running')
          .as('running'),
    ])
    // Silent while recorded alive, or already marked lost by the reaper (src/scale/
    // lost-workers.ts). A lost worker stops counting a day after its last heartbeat: a host
    // taken out of service must not alert forever.
    .where((eb) =>
      eb.or([
        eb.and([eb('w.state', '=', 'alive'), eb('w.heartbeat_at', '<', before)]),
        eb.and([eb('w.state', '=', 'lost'), eb('w.heartbeat_at', '>', dayBefore(now))]),
      ]),
    )
    .orderBy('w.heartbeat_at')
    .execute()
  return rows.map((w) => ({
    key: `worker_lost:${w.id}`,
    kind: 'worker_lost',
    severity: 'critical',
    summary:
      `worker ${w.id} on ${w.host} has not sent a heartbeat for ${formatAge(now, w.heartbeat_at)} ` +
      `(holding ${Number(w.running ?? 0)} running job(s)). Check the host; its jobs go back to ` +
      'the queue when their leases expire.',
    since: new Date(Date.parse(w.heartbeat_at) + config.workerSilentSeconds * 1000).toISOString(),
    subjects: [w.id],
  }))
}

async function stuckOutbox(
  ctx: AlertContext,
  config: AlertsConfig,
  now: Date,
): Promise<AlertCondition[]> {
  const before = new Date(now.getTime() - config.outboxStuckSeconds * 1000).toISOString()
  const [pending, dead] = await Promise.all([
    ctx.store.db
      .selectFrom('outbox')
      .select(['target', sql<number>`count(*)`.as('n'), sql<string>`min(created_at)`.as('oldest')])
      .where('state', '=', 'pending')
      .where('created_at', '<', before)
      .groupBy('target')
      .execute(),
    ctx.store.db
      .selectFrom('outbox')
      .select(['target', sql<number>`count(*)`.as('n'), sql<string>`min(created_at)`.as('oldest')])
      .where('state', '=', 'dead')
      .groupBy('target')
      .execute(),
  ])
  const stuck = pending.map(
    (p): AlertCondition => ({
      key: `outbox_stuck:${p.target}`,
      kind: 'outbox_stuck',
      severity: 'warning',
      summary:
        `${Number(p.n)} message(s) to ${p.target} still pending after ${formatSeconds(config.outboxStuckSeconds)} ` +
        `(oldest ${formatAge(now, p.oldest)}). Check that the target answers; \`GET /api/outbox?state=pending\` shows the last error.`,
      since: new Date(Date.parse(p.oldest) + config.outboxStuckSeconds * 1000).toISOString(),
      subjects: [p.target],
    }),
  )
  const refused = dead.map(
    (d): AlertCondition => ({
      key: `outbox_dead:${d.target}`,
      kind: 'outbox_dead',
      severity: 'warning',
      summary:
        `${Number(d.n)} message(s) to ${d.target} were given up. Fix the cause, then retry them ` +
        '(`POST /api/outbox/<id>/retry`).',
      since: d.oldest,
      subjects: [d.target],
    }),
  )
  return [...stuck, ...refused]
}

async function lowDisk(ctx: AlertContext, config: AlertsConfig): Promise<AlertCondition[]> {
  const disk = await diskSpace(ctx.config.builder.workDir)
  const percent = disk.sizeBytes > 0 ? (disk.freeBytes / disk.sizeBytes) * 100 : 100
  if (percent >= config.diskMinFreePercent && disk.freeBytes >= config.diskMinFreeBytes) return []
  return [
    {
      key: `disk_low:${disk.path}`,
      kind: 'disk_low',
      severity: 'critical',
      summary:
        `${formatBytes(disk.freeBytes)} free (${percent.toFixed(1)} %) on the file system of ${disk.path}; ` +
        `the minimum is ${config.diskMinFreePercent} % and ${formatBytes(config.diskMinFreeBytes)}. ` +
        'Builds fail without space: prune Docker images (`docker image prune`) or grow the disk.',
      since: null,
      subjects: [disk.path],
    },
  ]
}

function dayBefore(now: Date): string {
  return new Date(now.getTime() - 86_400_000).toISOString()
}

export function formatSeconds(seconds: number): string {
  if (seconds < 120) return `${seconds} s`
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`
  return `${(seconds / 3600).toFixed(seconds % 3600 === 0 ? 0 : 1)} h`
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`
}
