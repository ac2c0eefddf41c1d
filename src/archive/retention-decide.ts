import { isTerminal, type SubmissionState } from '../domain/states.ts'
import type { RetentionPolicy } from './retention-policy.ts'

/**
 * The retention decision for one challenge's archived submissions, without I/O: who keeps
 * their image and why, who may lose it and from when. retention.ts loads the candidates and
 * carries the decisions out.
 *
 * Reasons to keep: `pinned`, `best` (the participant's best N scored, debug excluded),
 * `last` (their latest M), `leaderboard` (on any round's board), `challenge_open` (nothing
 * expires before the end when the policy says so), `grace` (the grace period has not
 * passed), `busy` (a re-run or a verification uses it), `not_finished`, and `shared` (the
 * image is also another kept submission's: a reused build).
 */
export type KeepReason =
  | 'pinned'
  | 'best'
  | 'last'
  | 'leaderboard'
  | 'challenge_open'
  | 'grace'
  | 'busy'
  | 'not_finished'
  | 'shared'

export interface RetentionCandidate {
  readonly submissionId: number
  readonly challengeId: string
  readonly participant: string
  readonly state: SubmissionState
  readonly score: number | null
  readonly debug: boolean
  readonly createdAt: string
  readonly pinned: boolean
  readonly onLeaderboard: boolean
  /** A re-run or a verification is using the image. */
  readonly busy: boolean
  /** `registry/repository@sha256:…` */
  readonly reference: string
}

export interface RetentionDecision {
  readonly submissionId: number
  readonly participant: string
  readonly reference: string
  readonly action: 'keep' | 'expire'
  readonly reasons: readonly KeepReason[]
  /** When the grace period ends (null while the challenge runs and must be kept). */
  readonly expiresAt: string | null
}

export interface DecideOptions {
  readonly now: Date
  readonly end: Date | null
  readonly acceptingSubmissions: boolean
  readonly direction: 'maximize' | 'minimize'
}

const DAY_MS = 24 * 60 * 60 * 1000

/**
 * Decides each candidate of one challenge. `sharers` are submissions outside the challenge
 * that use one of the same images: they are kept, and so are the images.
 */
export function decideRetention(
  candidates: readonly RetentionCandidate[],
  policy: RetentionPolicy,
  options: DecideOptions,
  sharers: readonly { reference: string }[] = [],
): RetentionDecision[] {
  const reasons = new Map<number, Set<KeepReason>>(
    candidates.map((c) => [c.submissionId, new Set()]),
  )
  const keep = (id: number, reason: KeepReason) => reasons.get(id)?.add(reason)

  const ended = options.end ? options.now >= options.end : !options.acceptingSubmissions
  const byParticipant = new Map<string, RetentionCandidate[]>()
  for (const c of candidates)
    byParticipant.set(c.participant, [...(byParticipant.get(c.participant) ?? []), c])
  for (const list of byParticipant.values()) {
    const best = list
      .filter((c) => c.state === 'scored' && c.score !== null && !c.debug)
      .sort((a, b) => {
        const delta = (a.score ?? 0) - (b.score ?? 0)
        if (delta !== 0) return options.direction === 'maximize' ? -delta : delta
        return a.createdAt.localeCompare(b.createdAt) || a.submissionId - b.submissionId
      })
    for (const c of best.slice(0, policy.keepBestPerParticipant)) keep(c.submissionId, 'best')
    const latest = [...list].sort(
      (a, b) => b.createdAt.localeCompare(a.createdAt) || b.submissionId - a.submissionId,
    )
    for (const c of latest.slice(0, policy.keepLastPerParticipant)) keep(c.submissionId, 'last')
  }

  const expiresAt = new Map<number, Date | null>()
  for (const c of candidates) {
    if (c.pinned) keep(c.submissionId, 'pinned')
    if (c.onLeaderboard) keep(c.submissionId, 'leaderboard')
    if (c.busy) keep(c.submissionId, 'busy')
    if (!isTerminal(c.state)) keep(c.submissionId, 'not_finished')
    const created = new Date(c.createdAt)
    if (policy.keepUntilEnd && !ended) {
      keep(c.submissionId, 'challenge_open')
      expiresAt.set(c.submissionId, null)
      continue
    }
    const from = policy.keepUntilEnd && options.end && options.end > created ? options.end : created
    const at = new Date(from.getTime() + policy.graceDays * DAY_MS)
    expiresAt.set(c.submissionId, at)
    if (options.now < at) keep(c.submissionId, 'grace')
  }

  // An image goes only when every submission using it goes.
  const keptImages = new Set(sharers.map((s) => s.reference))
  for (const c of candidates)
    if ((reasons.get(c.submissionId)?.size ?? 0) > 0) keptImages.add(c.reference)
  for (const c of candidates) {
    const own = reasons.get(c.submissionId)
    if (own && own.size === 0 && keptImages.has(c.reference)) own.add('shared')
  }

  return candidates.map((c) => {
    const kept = [...(reasons.get(c.submissionId) ?? [])]
    return {
      submissionId: c.submissionId,
      participant: c.participant,
      reference: c.reference,
      action: kept.length === 0 ? 'expire' : 'keep',
      reasons: kept,
      expiresAt: expiresAt.get(c.submissionId)?.toISOString() ?? null,
    }
  })
}
