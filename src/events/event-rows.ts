import type { Executor } from '../store/transaction.ts'
import type { EventOwner, LogEvent, TimelineEvent, TimelineKind } from './stream-event.ts'

/** A stored event with who it is about. */
export interface Owned<T> {
  readonly event: T
  readonly owner: EventOwner
}

export interface EventQuery {
  readonly afterId: number
  readonly submissionId?: number
  readonly challengeId?: string
  readonly limit: number
}

/** Timeline rows after an id, oldest first, with their submission's challenge and owner. */
export async function readTimeline(
  db: Executor,
  query: EventQuery,
): Promise<Owned<TimelineEvent>[]> {
  let select = db
    .selectFrom('submission_events as e')
    .innerJoin('submissions as s', 's.id', 'e.submission_id')
    .select([
      'e.id',
      'e.submission_id',
      'e.evaluation_id',
      'e.kind',
      'e.state',
      'e.stage',
      'e.reason_code',
      'e.message',
      'e.actor',
      'e.at',
      's.challenge_id',
      's.participant_id',
    ])
    .where('e.id', '>', query.afterId)
    .orderBy('e.id')
    .limit(query.limit)
  if (query.submissionId !== undefined)
    select = select.where('e.submission_id', '=', query.submissionId)
  if (query.challengeId !== undefined)
    select = select.where('s.challenge_id', '=', query.challengeId)
  const rows = await select.execute()
  return rows.map((r) => ({
    owner: { challenge_id: r.challenge_id, participant_id: r.participant_id },
    event: {
      type: 'timeline',
      id: Number(r.id),
      submissionId: Number(r.submission_id),
      challengeId: r.challenge_id,
      evaluationId: r.evaluation_id === null ? null : Number(r.evaluation_id),
      kind: r.kind as TimelineKind,
      state: r.state,
      stage: r.stage,
      reasonCode: r.reason_code,
      message: r.message,
      actor: r.actor,
      at: r.at,
    },
  }))
}

/** Where a stored log belongs, without its text. */
export interface LogHeader {
  readonly id: number
  readonly submissionId: number
}

/** Log rows after an id, without their text (cheap: the poller reads these every tick). */
export async function readLogHeaders(
  db: Executor,
  query: { afterId: number; submissionId?: number; limit: number },
): Promise<LogHeader[]> {
  let select = db
    .selectFrom('logs as l')
    .innerJoin('evaluations as v', 'v.id', 'l.evaluation_id')
    .select(['l.id', 'v.submission_id'])
    .where('l.id', '>', query.afterId)
    .orderBy('l.id')
    .limit(query.limit)
  if (query.submissionId !== undefined)
    select = select.where('v.submission_id', '=', query.submissionId)
  const rows = await select.execute()
  return rows.map((r) => ({ id: Number(r.id), submissionId: Number(r.submission_id) }))
}

/** The logs with these ids, with their text. */
export async function readLogs(db: Executor, ids: readonly number[]): Promise<Owned<LogEvent>[]> {
  if (ids.length === 0) return []
  const rows = await db
    .selectFrom('logs as l')
    .innerJoin('evaluations as v', 'v.id', 'l.evaluation_id')
    .innerJoin('submissions as s', 's.id', 'v.submission_id')
    .select([
      'l.id',
      'l.evaluation_id',
      'l.stage',
      'l.content',
      'l.bytes_total',
      'l.bytes_elided',
      'l.created_at',
      'v.submission_id',
      's.challenge_id',
      's.participant_id',
    ])
    .where('l.id', 'in', [...ids])
    .orderBy('l.id')
    .execute()
  return rows.map((r) => ({
    owner: { challenge_id: r.challenge_id, participant_id: r.participant_id },
    event: {
      type: 'log',
      id: Number(r.id),
      submissionId: Number(r.submission_id),
      challengeId: r.challenge_id,
      evaluationId: Number(r.evaluation_id),
      stage: r.stage,
      text: r.content,
      bytesTotal: Number(r.bytes_total),
      bytesElided: Number(r.bytes_elided),
      at: r.created_at,
    },
  }))
}

/** The newest timeline and log ids: where a stream that replays nothing starts. */
export async function latestCursor(db: Executor): Promise<{ event: number; log: number }> {
  const [event, log] = await Promise.all([
    db
      .selectFrom('submission_events')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst(),
    db
      .selectFrom('logs')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst(),
  ])
  return { event: Number(event?.id ?? 0), log: Number(log?.id ?? 0) }
}
