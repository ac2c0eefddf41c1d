import type { ChallengeDefinition } from '../config/challenge.ts'
import { reportingDb } from '../outbox/tables.ts'
import { parseJson, type Executor } from '../store/transaction.ts'

/**
 * The embedded platform's leaderboards, computed from the store on each request.
 *
 * - One board per challenge and round (`round_id`); a challenge without rounds has one.
 * - One entry per quota subject: the team when the participant has one (`team:<name>`),
 *   else the participant, so a team competes as one entry.
 * - Which submission counts (`scoring.leaderboard`): `best` score (by `scoring.direction`),
 *   `latest` scored submission, or `selected`: the latest scored submission whose
 *   crowdai.json has `"selected": true`; a subject without one has no entry.
 * - Equal scores rank by time: the submission pushed first ranks higher.
 * - Debug submissions never count.
 * - `scoring.hidden`: the public view lists entries without scores or ranks until an
 *   organizer releases the round's scores.
 * - `scoring.freezeAt`: from then on the public view shows the board as it stood then
 *   (submissions pushed and scored before it); organizers still see the live board.
 */
export interface Leaderboard {
  readonly challengeId: string
  readonly roundId: string | null
  readonly policy: 'best' | 'latest' | 'selected'
  readonly direction: 'maximize' | 'minimize'
  readonly view: LeaderboardView
  /** Scores are withheld from this view (hidden and not released). */
  readonly scoresHidden: boolean
  readonly released: boolean
  /** The view shows the board as of this time (the freeze), or null for live. */
  readonly frozenAt: string | null
  readonly entries: readonly LeaderboardEntry[]
}

export interface LeaderboardEntry {
  readonly rank: number | null
  /** `alice` or `team:flowers`. */
  readonly subject: string
  readonly name: string
  readonly score: number | null
  readonly scoreSecondary: number | null
  readonly submissionId: number
  readonly submittedAt: string
  /** Scored submissions of the subject on this board. */
  readonly submissions: number
}

export type LeaderboardView = 'public' | 'organizer'

export interface LeaderboardOptions {
  /** A round id, or undefined for the current round (the one open now, else the last begun). */
  readonly roundId?: string | undefined
  readonly view: LeaderboardView
  readonly now: Date
}

interface Candidate {
  id: number
  subject: string
  name: string
  score: number
  scoreSecondary: number | null
  createdAt: string
  selected: boolean
}

export async function computeLeaderboard(
  db: Executor,
  definition: ChallengeDefinition,
  options: LeaderboardOptions,
): Promise<Leaderboard> {
  const roundId = options.roundId ?? currentRound(definition, options.now)
  const freezeAt = definition.scoring.freezeAt ? new Date(definition.scoring.freezeAt) : null
  const frozen = options.view === 'public' && freezeAt !== null && options.now >= freezeAt
  const released = await isReleased(db, definition.id, roundId)
  const scoresHidden = options.view === 'public' && definition.scoring.hidden && !released

  let query = db
    .selectFrom('submissions as s')
    .leftJoin('participants as p', 'p.id', 's.participant_id')
    .select([
      's.id',
      's.quota_subject',
      's.score',
      's.score_secondary',
      's.created_at',
      's.state_changed_at',
      's.manifest_extra_json',
      'p.username',
      'p.display_name',
      'p.team',
    ])
    .where('s.challenge_id', '=', definition.id)
    .where('s.state', '=', 'scored')
    .where('s.debug', '=', 0)
    .where('s.score', 'is not', null)
  if (roundId !== null) query = query.where('s.round_id', '=', roundId)
  if (frozen && freezeAt) {
    const at = freezeAt.toISOString()
    query = query.where('s.created_at', '<', at).where('s.state_changed_at', '<=', at)
  }
  const rows = await query.execute()

  const candidates: Candidate[] = rows.map((r) => {
    const subject = r.quota_subject ?? r.username ?? `submission:${r.id}`
    const team = subject.startsWith('team:') ? subject.slice('team:'.length) : null
    return {
      id: Number(r.id),
      subject,
      name: team ?? r.display_name ?? r.username ?? subject,
      score: Number(r.score),
      scoreSecondary: r.score_secondary === null ? null : Number(r.score_secondary),
      createdAt: r.created_at,
      selected: parseJson<Record<string, unknown>>(r.manifest_extra_json, {}).selected === true,
    }
  })

  const policy = definition.scoring.leaderboard
  const better = betterOf(definition.scoring.direction)
  const bySubject = new Map<string, Candidate[]>()
  for (const c of candidates) bySubject.set(c.subject, [...(bySubject.get(c.subject) ?? []), c])

  const chosen: { pick: Candidate; count: number }[] = []
  for (const list of bySubject.values()) {
    const pool = policy === 'selected' ? list.filter((c) => c.selected) : list
    const pick = pool.reduce<Candidate | null>((acc, c) => {
      if (!acc) return c
      if (policy === 'best') return better(c, acc) < 0 ? c : acc
      return byTime(c, acc) > 0 ? c : acc
    }, null)
    if (pick) chosen.push({ pick, count: list.length })
  }

  const ordered = scoresHidden
    ? chosen.sort((a, b) => a.pick.name.localeCompare(b.pick.name))
    : chosen.sort((a, b) => better(a.pick, b.pick))
  return {
    challengeId: definition.id,
    roundId,
    policy,
    direction: definition.scoring.direction,
    view: options.view,
    scoresHidden,
    released,
    frozenAt: frozen && freezeAt ? freezeAt.toISOString() : null,
    entries: ordered.map(({ pick, count }, index) => ({
      rank: scoresHidden ? null : index + 1,
      subject: pick.subject,
      name: pick.name,
      score: scoresHidden ? null : pick.score,
      scoreSecondary: scoresHidden ? null : pick.scoreSecondary,
      submissionId: pick.id,
      submittedAt: pick.createdAt,
      submissions: count,
    })),
  }
}

/** Releases a round's hidden scores (idempotent). */
export async function releaseScores(
  db: Executor,
  challengeId: string,
  roundId: string | null,
  by: string,
  at: Date,
): Promise<void> {
  await reportingDb(db)
    .insertInto('leaderboard_releases')
    .values({
      challenge_id: challengeId,
      round_id: roundId ?? '',
      released_by: by,
      released_at: at.toISOString(),
    })
    .onConflict((oc) => oc.columns(['challenge_id', 'round_id']).doNothing())
    .execute()
}

async function isReleased(
  db: Executor,
  challengeId: string,
  roundId: string | null,
): Promise<boolean> {
  const row = await reportingDb(db)
    .selectFrom('leaderboard_releases')
    .select('id')
    .where('challenge_id', '=', challengeId)
    .where('round_id', '=', roundId ?? '')
    .executeTakeFirst()
  return row !== undefined
}

/** The round open now; else the last one begun; else the first. Null without rounds. */
export function currentRound(definition: ChallengeDefinition, now: Date): string | null {
  const rounds = definition.rounds
  if (rounds.length === 0) return null
  const open = rounds.find((r) => new Date(r.start) <= now && now < new Date(r.end))
  if (open) return open.id
  const begun = rounds
    .filter((r) => new Date(r.start) <= now)
    .sort((a, b) => a.start.localeCompare(b.start))
  return (begun.at(-1) ?? rounds[0])?.id ?? null
}

/** Negative when `a` ranks above `b`: the better score, then the earlier push. */
function betterOf(direction: 'maximize' | 'minimize') {
  return function compare(a: Candidate, b: Candidate): number {
    if (a.score !== b.score) return direction === 'maximize' ? b.score - a.score : a.score - b.score
    return byTime(a, b)
  }
}

/** Negative when `a` was pushed before `b`, positive when after. */
function byTime(a: Candidate, b: Candidate): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? -1 : 1
  return a.id - b.id
}
