/**
 * What the live event stream carries (docs/operating.md, "Live progress").
 *
 * Glossary:
 * - **timeline event**: one row of `submission_events` (a state change, a stage change, a
 *   progress line or a note), sent as it is stored. Its id is the row's id.
 * - **log event**: one stored stage log (`logs`), sent when the stage's log is saved. Logs
 *   are captured per stage and stored when the stage ends, so they arrive per stage, not per
 *   line. Only operators receive them for now.
 * - **cursor**: where a stream stands: the last timeline id and the last log id it sent. It
 *   is each message's SSE id (`57`, or `57.3` on streams that carry logs), so a client that
 *   reconnects with `Last-Event-ID` resumes exactly after what it saw.
 */
export type TimelineKind = 'state' | 'stage' | 'progress' | 'note'

export interface TimelineEvent {
  readonly type: 'timeline'
  readonly id: number
  readonly submissionId: number
  readonly challengeId: string | null
  readonly evaluationId: number | null
  readonly kind: TimelineKind
  readonly state: string | null
  readonly stage: string | null
  readonly reasonCode: string | null
  readonly message: string
  readonly actor: string
  readonly at: string
}

export interface LogEvent {
  readonly type: 'log'
  /** The `logs` row id. */
  readonly id: number
  readonly submissionId: number
  readonly challengeId: string | null
  readonly evaluationId: number
  readonly stage: string
  readonly text: string
  readonly bytesTotal: number
  readonly bytesElided: number
  readonly at: string
}

export type StreamEvent = TimelineEvent | LogEvent

/** Who a stored event is about, for visibility checks; never sent to clients. */
export interface EventOwner {
  readonly challenge_id: string | null
  readonly participant_id: number | null
}

export interface Cursor {
  readonly event: number
  readonly log: number
}

export const START: Cursor = { event: 0, log: 0 }

/** `57` or `57.3`; null when the text is not a cursor. */
export function parseCursor(text: string): Cursor | null {
  const match = /^(\d{1,15})(?:\.(\d{1,15}))?$/.exec(text.trim())
  if (!match) return null
  return { event: Number(match[1]), log: Number(match[2] ?? 0) }
}

export function formatCursor(cursor: Cursor, withLogs: boolean): string {
  return withLogs ? `${cursor.event}.${cursor.log}` : String(cursor.event)
}
