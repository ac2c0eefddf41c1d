import type { Executor } from '../store/transaction.ts'

export interface TimelineEntry {
  submissionId: number
  evaluationId?: number | null
  kind: 'state' | 'stage' | 'progress' | 'note'
  state?: string | null
  stage?: string | null
  reasonCode?: string | null
  message: string
  actor: string
  at: Date
}

/** Appends one entry to a submission's timeline. Entries are data, not log lines. */
export async function appendTimeline(db: Executor, entry: TimelineEntry): Promise<void> {
  await db
    .insertInto('submission_events')
    .values({
      submission_id: entry.submissionId,
      evaluation_id: entry.evaluationId ?? null,
      kind: entry.kind,
      state: entry.state ?? null,
      stage: entry.stage ?? null,
      reason_code: entry.reasonCode ?? null,
      message: entry.message,
      actor: entry.actor,
      at: entry.at.toISOString(),
    })
    .execute()
}
