import { sql } from 'kysely'
import { Counter, Gauge, type Registry } from 'prom-client'

import type { AppContext } from '../app/context.ts'
import { ALERT_KINDS, evaluateAlerts } from './alert-conditions.ts'
import { diskSpace } from './disk-space.ts'

export type MetricsContext = Pick<AppContext, 'store' | 'clock' | 'config' | 'queue'>

/**
 * Gauges read from the store when Prometheus scrapes: they tell the truth of the database
 * whichever process made the change (workers run elsewhere). Each is one grouped query on an
 * indexed column; `proctor_submission_failures_total` counts the timeline's state entries.
 */
export function registerStoreGauges(registry: Registry, ctx: MetricsContext): void {
  const { db } = ctx.store
  const registers = [registry]

  new Gauge({
    name: 'proctor_submissions',
    help: 'Submissions by challenge and current state.',
    labelNames: ['challenge', 'state'] as const,
    registers,
    async collect() {
      const rows = await db
        .selectFrom('submissions')
        .select(['challenge_id', 'state', sql<number>`count(*)`.as('n')])
        .groupBy(['challenge_id', 'state'])
        .execute()
      this.reset()
      for (const r of rows)
        this.set({ challenge: r.challenge_id ?? '', state: r.state }, Number(r.n))
    },
  })

  const depths = sharedWhileLoading(() => ctx.queue.depth())
  new Gauge({
    name: 'proctor_queue_jobs',
    help: 'Jobs waiting and running per queue: the queue depth.',
    labelNames: ['queue', 'state'] as const,
    registers,
    async collect() {
      const rows = await depths()
      this.reset()
      for (const d of rows) {
        this.set({ queue: d.queue, state: 'waiting' }, d.waiting)
        this.set({ queue: d.queue, state: 'running' }, d.running)
      }
    },
  })
  new Gauge({
    name: 'proctor_queue_oldest_waiting_seconds',
    help: 'Age of the oldest waiting job per queue (challenge id, or intake).',
    labelNames: ['queue'] as const,
    registers,
    async collect() {
      const rows = await depths()
      this.reset()
      for (const d of rows)
        if (d.oldestAgeSeconds !== null) this.set({ queue: d.queue }, d.oldestAgeSeconds)
    },
  })

  new Counter({
    name: 'proctor_submission_failures_total',
    help: 'Submissions that ended failed, rejected or cancelled, by challenge and reason code (from the timeline).',
    labelNames: ['challenge', 'state', 'code'] as const,
    registers,
    async collect() {
      const rows = await db
        .selectFrom('submission_events as e')
        .innerJoin('submissions as s', 's.id', 'e.submission_id')
        .select(['s.challenge_id', 'e.state', 'e.reason_code', sql<number>`count(*)`.as('n')])
        .where('e.kind', '=', 'state')
        .where('e.state', 'in', ['failed', 'rejected', 'cancelled'])
        .groupBy(['s.challenge_id', 'e.state', 'e.reason_code'])
        .execute()
      this.reset()
      for (const r of rows) {
        const labels = {
          challenge: r.challenge_id ?? '',
          state: r.state ?? '',
          code: r.reason_code ?? 'none',
        }
        this.inc(labels, Number(r.n))
      }
    },
  })

  const outbox = sharedWhileLoading(() =>
    db
      .selectFrom('outbox')
      .select([
        'target',
        'state',
        sql<number>`count(*)`.as('n'),
        sql<string>`min(created_at)`.as('oldest'),
      ])
      .where('state', 'in', ['pending', 'dead'])
      .groupBy(['target', 'state'])
      .execute(),
  )
  new Gauge({
    name: 'proctor_outbox_messages',
    help: 'Outbox messages by target and state (pending is the backlog; dead were given up).',
    labelNames: ['target', 'state'] as const,
    registers,
    async collect() {
      const rows = await outbox()
      this.reset()
      for (const r of rows) this.set({ target: r.target, state: r.state }, Number(r.n))
    },
  })
  new Gauge({
    name: 'proctor_outbox_oldest_pending_seconds',
    help: 'Age of the oldest pending outbox message per target.',
    labelNames: ['target'] as const,
    registers,
    async collect() {
      const rows = await outbox()
      const now = ctx.clock.now().getTime()
      this.reset()
      for (const r of rows) {
        if (r.state === 'pending')
          this.set({ target: r.target }, (now - Date.parse(r.oldest)) / 1000)
      }
    },
  })

  // Stopped workers stay in the table; the gauges count the last day's.
  const workers = sharedWhileLoading(() =>
    db
      .selectFrom('workers')
      .select(['id', 'host', 'state', 'heartbeat_at'])
      .where((eb) => eb.or([eb('state', '=', 'alive'), eb('heartbeat_at', '>', dayAgo(ctx))]))
      .execute(),
  )
  new Gauge({
    name: 'proctor_workers',
    help: 'Workers by recorded state (alive, stopped, lost).',
    labelNames: ['state'] as const,
    registers,
    async collect() {
      const rows = await workers()
      this.reset()
      for (const state of ['alive', 'stopped', 'lost']) this.set({ state }, 0)
      for (const w of rows) this.inc({ state: w.state })
    },
  })
  new Gauge({
    name: 'proctor_worker_heartbeat_age_seconds',
    help: 'Seconds since each live worker last sent a heartbeat.',
    labelNames: ['worker', 'host'] as const,
    registers,
    async collect() {
      const rows = await workers()
      const now = ctx.clock.now().getTime()
      this.reset()
      for (const w of rows) {
        if (w.state === 'alive')
          this.set({ worker: w.id, host: w.host }, (now - Date.parse(w.heartbeat_at)) / 1000)
      }
    },
  })

  new Gauge({
    name: 'proctor_archive_images',
    help: 'Submission images by archive state (their bytes: proctor_archive_bytes).',
    labelNames: ['state'] as const,
    registers,
    async collect() {
      const rows = await db
        .selectFrom('submissions')
        .select(['archive', sql<number>`count(*)`.as('n')])
        .where('image_ref', 'is not', null)
        .groupBy('archive')
        .execute()
      this.reset()
      for (const r of rows) this.set({ state: r.archive }, Number(r.n))
    },
  })

  const disk = sharedWhileLoading(() => diskSpace(ctx.config.builder.workDir))
  new Gauge({
    name: 'proctor_disk_free_bytes',
    help: 'Free bytes on the file system holding the work folder (builds and outputs).',
    labelNames: ['path'] as const,
    registers,
    async collect() {
      const d = await disk()
      this.set({ path: d.path }, d.freeBytes)
    },
  })
  new Gauge({
    name: 'proctor_disk_size_bytes',
    help: 'Size of the file system holding the work folder.',
    labelNames: ['path'] as const,
    registers,
    async collect() {
      const d = await disk()
      this.set({ path: d.path }, d.sizeBytes)
    },
  })

  new Gauge({
    name: 'proctor_alerts_active',
    help: 'Alert conditions that hold now, by kind (the same checks as the webhook and the dashboard).',
    labelNames: ['kind'] as const,
    registers,
    async collect() {
      const conditions = await evaluateAlerts(ctx)
      this.reset()
      for (const kind of ALERT_KINDS) this.set({ kind }, 0)
      for (const c of conditions) this.inc({ kind: c.kind })
    },
  })
}

/**
 * One load shared by every caller while it runs. A registry collects all its metrics at
 * once, so two gauges filled from one query share that query within a scrape.
 */
function sharedWhileLoading<T>(load: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | null = null
  return () => {
    pending ??= load().finally(() => (pending = null))
    return pending
  }
}

function dayAgo(ctx: MetricsContext): string {
  return new Date(ctx.clock.now().getTime() - 86_400_000).toISOString()
}
