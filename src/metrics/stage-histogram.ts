import { Histogram, type Registry } from 'prom-client'

import type { MetricsContext } from './store-gauges.ts'

/** Wide buckets: a fetch takes seconds, a build minutes, a phase up to the challenge's limit. */
const BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200]

/** A stage started this long ago and still unfinished was abandoned (its worker died). */
const ABANDONED_MS = 24 * 3_600_000

/**
 * `proctor_stage_duration_seconds{challenge,stage,outcome}`, built from `stage_runs` at each
 * scrape. Stages run in worker processes, which Prometheus may not scrape; the store sees
 * them all.
 *
 * Each run is observed once, when it is first seen finished. A scrape reads the runs from the
 * oldest one still in progress onwards (usually a handful), so it needs no clock: every run
 * below that id was observed already. The first scrape of a process reads every run, which
 * Prometheus sees as a counter reset. On PostgreSQL a run can commit after a run with a
 * higher id, so the window also keeps the last LOOKBACK ids and skips the ones it has seen.
 */
export function registerStageHistogram(registry: Registry, ctx: MetricsContext): void {
  const { db } = ctx.store
  const lookback = ctx.store.dialect === 'postgres' ? 100 : 0
  /** Every run with a lower id was observed (or abandoned). */
  let low = 0
  const seen = new Set<number>()

  new Histogram({
    name: 'proctor_stage_duration_seconds',
    help: 'Wall time of finished evaluation stages (fetch, build, push, each phase), by outcome.',
    labelNames: ['challenge', 'stage', 'outcome'] as const,
    buckets: BUCKETS,
    registers: [registry],
    async collect() {
      const rows = await db
        .selectFrom('stage_runs as r')
        .innerJoin('evaluations as v', 'v.id', 'r.evaluation_id')
        .innerJoin('submissions as s', 's.id', 'v.submission_id')
        .select([
          'r.id',
          's.challenge_id',
          'r.stage',
          'r.outcome',
          'r.wall_ms',
          'r.started_at',
          'r.finished_at',
        ])
        .where('r.id', '>=', low)
        .orderBy('r.id')
        .execute()
      const abandonedBefore = new Date(ctx.clock.now().getTime() - ABANDONED_MS).toISOString()
      let firstOpen: number | null = null
      let highest = low - 1
      for (const r of rows) {
        const id = Number(r.id)
        highest = Math.max(highest, id)
        if (r.finished_at === null || r.wall_ms === null) {
          if (firstOpen === null && r.started_at > abandonedBefore) firstOpen = id
          continue
        }
        if (seen.has(id)) continue
        seen.add(id)
        const labels = {
          challenge: r.challenge_id ?? '',
          stage: r.stage,
          outcome: r.outcome ?? 'unknown',
        }
        this.observe(labels, Number(r.wall_ms) / 1000)
      }
      low = Math.max(low, Math.min(firstOpen ?? highest + 1, highest + 1 - lookback))
      for (const id of seen) if (id < low) seen.delete(id)
    },
  })
}
