import type { Challenge, ChallengeDefinition } from '../config/challenge.ts'
import type { QuotaWindow } from '../quota/window.ts'

/**
 * The rules a submission must pass before it is announced and charged, as pure functions:
 * each returns null when the rule holds, or the message a participant reads.
 */

type Round = ChallengeDefinition['rounds'][number]
type Quota = ChallengeDefinition['quota']

/** Where a submission at `now` falls in the challenge's calendar. */
export type OpenWindow =
  | { open: true; roundId: string | null; quota: Quota }
  | { open: false; message: string }

/** The round id recorded for a submission after the last round of a `post-challenge` challenge. */
export const POST_CHALLENGE_ROUND = 'post-challenge'

/**
 * Whether the challenge takes submissions now, and in which round. A challenge without
 * rounds is open while `acceptSubmissions` is true. With rounds, a submission belongs to the
 * round whose [start, end) holds `now`; before the first round or between rounds it is
 * refused; after the last, `afterLastRound` decides (`refuse`, or `post-challenge`: accepted
 * under the challenge's own quota with round id `post-challenge`).
 */
export function openWindow(challenge: Challenge, now: Date): OpenWindow {
  const def = challenge.definition
  if (!def.acceptSubmissions) {
    return { open: false, message: `challenge ${def.id} does not accept submissions at the moment` }
  }
  if (def.rounds.length === 0) return { open: true, roundId: null, quota: def.quota }

  const t = now.getTime()
  const rounds = [...def.rounds].sort((a, b) => Date.parse(a.start) - Date.parse(b.start))
  const current = rounds.find((r) => Date.parse(r.start) <= t && t < Date.parse(r.end))
  if (current) return { open: true, roundId: current.id, quota: current.quota ?? def.quota }

  const next = rounds.find((r) => Date.parse(r.start) > t)
  if (next) {
    return {
      open: false,
      message: `challenge ${def.id} has no round open now; round ${next.id} opens at ${iso(next.start)}`,
    }
  }
  const last = rounds.at(-1) as Round
  if (def.afterLastRound === 'post-challenge') {
    return { open: true, roundId: POST_CHALLENGE_ROUND, quota: def.quota }
  }
  return {
    open: false,
    message: `challenge ${def.id} closed at ${iso(last.end)} (end of round ${last.id}) and takes no more submissions`,
  }
}

/** The repository's name (last path segment) must be the challenge id, ignoring case. */
export function nameMismatch(projectPath: string, challengeId: string): string | null {
  const repoName = projectPath.split('/').at(-1) ?? projectPath
  if (repoName.toLowerCase() === challengeId.toLowerCase()) return null
  return `the repository is named "${repoName}" but crowdai.json names challenge "${challengeId}"; they must be the same (case does not matter)`
}

/**
 * Glob match for tag patterns: `*` matches any run of characters (`/` included), `?` one
 * character; everything else is literal. `submission-*` takes `submission-1` and
 * `submission-round2/final`; the default `*` takes every tag.
 */
export function matchesTagPattern(tag: string, pattern: string): boolean {
  const source = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('')
  return new RegExp(`^${source}$`, 's').test(tag)
}

/** "the 24 h window", "the calendar day (Europe/Paris)": the window in a quota message. */
export function describeWindow(window: QuotaWindow): string {
  if (window.kind === 'calendar') {
    return `the calendar ${window.period} (${window.timeZone})`
  }
  const minutes = window.ms / 60_000
  if (minutes % (24 * 60) === 0 && minutes >= 48 * 60) return `the ${minutes / (24 * 60)} d window`
  if (minutes % 60 === 0) return `the ${minutes / 60} h window`
  return `the ${minutes} min window`
}

function iso(text: string): string {
  return new Date(text).toISOString()
}
