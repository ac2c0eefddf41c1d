import type { Executor } from '../store/transaction.ts'

/** Opens a stage run row; returns its id for `finishStageRun`. */
export async function startStageRun(
  db: Executor,
  run: { evaluationId: number; attempt: number; stage: string; at: Date },
): Promise<number> {
  const row = await db
    .insertInto('stage_runs')
    .values({
      evaluation_id: run.evaluationId,
      attempt: run.attempt,
      stage: run.stage,
      started_at: run.at.toISOString(),
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return Number(row.id)
}

export async function finishStageRun(
  db: Executor,
  id: number,
  result: {
    at: Date
    outcome: string
    wallMs: number
    cpuMs?: number | null
    peakMemoryBytes?: number | null
    detail?: unknown
  },
): Promise<void> {
  await db
    .updateTable('stage_runs')
    .set({
      finished_at: result.at.toISOString(),
      outcome: result.outcome,
      wall_ms: Math.round(result.wallMs),
      cpu_ms: result.cpuMs ?? null,
      peak_memory_bytes: result.peakMemoryBytes ?? null,
      detail_json: result.detail === undefined ? null : JSON.stringify(result.detail),
    })
    .where('id', '=', id)
    .execute()
}

/** Stores a stage's captured (already capped and redacted) log. */
export async function storeLog(
  db: Executor,
  log: {
    evaluationId: number
    stage: string
    text: string
    bytesTotal: number
    bytesElided: number
    at: Date
  },
): Promise<void> {
  await db
    .insertInto('logs')
    .values({
      evaluation_id: log.evaluationId,
      stage: log.stage,
      content: log.text,
      bytes_total: log.bytesTotal,
      bytes_elided: log.bytesElided,
      created_at: log.at.toISOString(),
    })
    .execute()
}
