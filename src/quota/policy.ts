import type { ChallengeDefinition } from '../config/challenge.ts'
import { parseWindow, type QuotaWindow } from './window.ts'

type QuotaDefinition = ChallengeDefinition['quota']

/** The quota rules that apply to one submission. */
export interface QuotaPolicy {
  window: QuotaWindow
  /** Units in the window: `limit`, or `debugLimit` for a debug submission. */
  limit: number
  /** Submissions of one subject running at once in the challenge; null: no cap. */
  inFlight: number | null
  /**
   * The round whose own quota applies, recorded on the charge; null when the challenge's
   * quota applies, which then counts across rounds (a round boundary does not reset it).
   */
  roundId: string | null
}

/**
 * Which quota a submission answers to: its round's, when the round sets one, else the
 * challenge's. Debug submissions are counted apart, against `debugLimit` (default: the
 * same number as `limit`).
 *
 *   quota: { limit: 5, window: 24h, inFlight: 2, debugLimit: 20 }
 *   rounds: [{ id: final, start: …, end: …, quota: { limit: 2, period: day, timeZone: Europe/Zurich } }]
 */
export function quotaPolicy(
  definition: Pick<ChallengeDefinition, 'quota' | 'rounds'>,
  options: { roundId: string | null; debug: boolean },
): QuotaPolicy {
  const round = definition.rounds.find((r) => r.id === options.roundId)
  const quota: QuotaDefinition = round?.quota ?? definition.quota
  return {
    window: parseWindow(quota),
    limit: options.debug ? (quota.debugLimit ?? quota.limit) : quota.limit,
    inFlight: quota.inFlight ?? null,
    roundId: round?.quota ? round.id : null,
  }
}

/**
 * Who a submission charges: the pusher's team when they have one, else the pusher. Authors
 * named in crowdai.json are credited, never charged.
 */
export function quotaSubject(pusher: { username: string; team: string | null }): string {
  return pusher.team ? `team:${pusher.team}` : pusher.username
}
