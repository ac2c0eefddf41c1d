import { participantLogPolicy, type ChallengeDefinition } from '../config/challenge.ts'
import type { Submission } from '../store/schema.ts'
import { parseJson } from '../store/transaction.ts'
import type { Caller } from './auth.ts'

/** What a `tail` policy shows of a phase's log. */
export const PARTICIPANT_TAIL_BYTES = 4096

/**
 * Decides, per stored log, what a caller may read: organizers and operators everything; a
 * participant their build log (it holds only what their repository did) and each phase as
 * the challenge's `participantLogs` says (`none` hides it, `tail` shows its end).
 * Returns null for a log the caller may not see.
 */
export function logPolicyFor(
  caller: Caller | undefined,
  submission: Submission,
): (stage: string, text: string) => string | null {
  if (caller && caller.scope !== 'participant') return (_stage, text) => text

  const definition = parseJson<ChallengeDefinition | null>(submission.challenge_snapshot_json, null)
  return function visible(stage, text) {
    if (stage === 'build') return text
    const phase = definition?.phases.find((p) => p.name === stage)
    if (!phase) return null
    const policy = participantLogPolicy(phase)
    if (policy === 'all') return text
    if (policy === 'none') return null
    return text.length <= PARTICIPANT_TAIL_BYTES
      ? text
      : `[… earlier output hidden …]\n${text.slice(-PARTICIPANT_TAIL_BYTES)}`
  }
}
