import type { AppContext } from '../app/context.ts'
import type { SubmissionState } from '../domain/states.ts'
import { computeLeaderboard } from '../platform/leaderboard.ts'

/** A cell: text, a number, or empty. */
export type Cell = string | number | null

export interface Table {
  readonly columns: readonly string[]
  readonly rows: AsyncIterable<readonly Cell[]> | Iterable<readonly Cell[]>
}

const PAGE = 1_000

export const SUBMISSION_COLUMNS = [
  'id',
  'challenge',
  'round',
  'participant',
  'team',
  'project',
  'tag',
  'commit',
  'state',
  'reason_code',
  'reason_message',
  'score',
  'score_secondary',
  'debug',
  'attempt',
  'image_reference',
  'image_digest',
  'archive',
  'created_at',
  'ended_at',
] as const

/**
 * Every submission (of one challenge, or of those listed), oldest first, read a page at a
 * time so an export of any size holds one page in memory.
 */
export function submissionsTable(
  ctx: Pick<AppContext, 'store'>,
  filter: { challengeIds: readonly string[] | null; state?: SubmissionState },
): Table {
  async function* rows(): AsyncGenerator<readonly Cell[]> {
    let after = 0
    for (;;) {
      let query = ctx.store.db
        .selectFrom('submissions as s')
        .leftJoin('participants as p', 'p.id', 's.participant_id')
        .select([
          's.id',
          's.challenge_id',
          's.round_id',
          'p.username',
          'p.team',
          's.project_path',
          's.tag',
          's.commit_sha',
          's.state',
          's.reason_code',
          's.reason_message',
          's.score',
          's.score_secondary',
          's.debug',
          's.attempt',
          's.image_ref',
          's.image_digest',
          's.archive',
          's.created_at',
          's.state_changed_at',
        ])
        .where('s.id', '>', after)
        .orderBy('s.id')
        .limit(PAGE)
      if (filter.challengeIds !== null) {
        if (filter.challengeIds.length === 0) return
        query = query.where('s.challenge_id', 'in', [...filter.challengeIds])
      }
      if (filter.state) query = query.where('s.state', '=', filter.state)
      const page = await query.execute()
      for (const s of page) {
        const ended = ['scored', 'failed', 'rejected', 'cancelled'].includes(s.state)
        yield [
          Number(s.id),
          s.challenge_id,
          s.round_id,
          s.username,
          s.team,
          s.project_path,
          s.tag,
          s.commit_sha,
          s.state,
          s.reason_code,
          s.reason_message,
          s.score,
          s.score_secondary,
          s.debug === 1 ? 'true' : 'false',
          s.attempt,
          s.image_ref,
          s.image_digest,
          s.archive,
          s.created_at,
          ended ? s.state_changed_at : null,
        ]
      }
      const last = page.at(-1)
      if (!last || page.length < PAGE) return
      after = Number(last.id)
    }
  }
  return { columns: SUBMISSION_COLUMNS, rows: rows() }
}

export const LEADERBOARD_COLUMNS = [
  'rank',
  'name',
  'subject',
  'score',
  'score_secondary',
  'submission_id',
  'submitted_at',
  'scored_submissions',
] as const

/** A challenge's leaderboard as organizers see it (hidden scores included). */
export async function leaderboardTable(
  ctx: Pick<AppContext, 'store' | 'clock' | 'challenges'>,
  challengeId: string,
  roundId: string | undefined,
): Promise<Table | null> {
  const challenge = ctx.challenges.get(challengeId)
  if (!challenge) return null
  const board = await computeLeaderboard(ctx.store.db, challenge.definition, {
    roundId,
    view: 'organizer',
    now: ctx.clock.now(),
  })
  function* rows(): Generator<readonly Cell[]> {
    for (const e of board.entries) {
      yield [
        e.rank,
        e.name,
        e.subject,
        e.score,
        e.scoreSecondary,
        e.submissionId,
        e.submittedAt,
        e.submissions,
      ]
    }
  }
  return { columns: LEADERBOARD_COLUMNS, rows: rows() }
}

/** RFC 4180 lines, header first. */
export async function* toCsv(table: Table): AsyncGenerator<string> {
  yield `${table.columns.join(',')}\r\n`
  for await (const row of table.rows) yield `${row.map(csvCell).join(',')}\r\n`
}

/** A JSON array of objects keyed by column, streamed. */
export async function* toJson(table: Table): AsyncGenerator<string> {
  yield '['
  let first = true
  for await (const row of table.rows) {
    const record = Object.fromEntries(table.columns.map((c, i) => [c, row[i] ?? null]))
    yield `${first ? '' : ','}\n${JSON.stringify(record)}`
    first = false
  }
  yield '\n]\n'
}

/**
 * Quotes a cell when needed. Text starting like a formula gets a leading apostrophe: a
 * participant picks their tag and project names, and a spreadsheet would run `=HYPERLINK(…)`.
 */
export function csvCell(value: Cell): string {
  if (value === null) return ''
  if (typeof value === 'number') return String(value)
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe
}
