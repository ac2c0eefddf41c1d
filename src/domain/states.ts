/**
 * The lifecycle of a submission.
 *
 *   received ─┬─▶ rejected                      (not a valid submission: never charged or announced)
 *             ├─▶ failed                        (quota_exceeded, or refused by the platform)
 *             └─▶ queued ─▶ building ─▶ evaluating ─▶ scored
 *                   ▲          │            │
 *                   │          └────────────┴──▶ failed | cancelled
 *                   └── retry (infrastructure) or organizer re-queue, recorded with the attempt
 *
 * Terminal states end a submission's automatic life: nothing but an organizer's explicit
 * re-queue moves a submission out of one.
 */
export const SUBMISSION_STATES = [
  'received',
  'rejected',
  'queued',
  'building',
  'evaluating',
  'scored',
  'failed',
  'cancelled',
] as const

export type SubmissionState = (typeof SUBMISSION_STATES)[number]

export const TERMINAL_STATES: ReadonlySet<SubmissionState> = new Set([
  'rejected',
  'scored',
  'failed',
  'cancelled',
])

export function isTerminal(state: SubmissionState): boolean {
  return TERMINAL_STATES.has(state)
}

/** Which moves are legal. Anything else is a bug, and the store refuses it. */
const TRANSITIONS: Readonly<Record<SubmissionState, readonly SubmissionState[]>> = {
  received: ['rejected', 'queued', 'failed', 'cancelled'],
  queued: ['building', 'evaluating', 'failed', 'cancelled'],
  // building → queued and evaluating → queued are infrastructure retries.
  building: ['evaluating', 'queued', 'failed', 'cancelled'],
  evaluating: ['scored', 'queued', 'failed', 'cancelled'],
  // Terminal states move only by an organizer's re-queue.
  scored: ['queued'],
  failed: ['queued'],
  cancelled: ['queued'],
  rejected: [],
}

export function canMove(from: SubmissionState, to: SubmissionState): boolean {
  return TRANSITIONS[from].includes(to)
}

/** The stages of an evaluation job, in order. A submission records the one it is in. */
export const STAGES = ['fetch', 'build', 'push', 'predict', 'score'] as const
export type Stage = (typeof STAGES)[number] | (string & {})

/** Archiving is an attribute of a submission's image, not a state of the submission. */
export const ARCHIVE_STATES = ['pending', 'archived', 'failed', 'expired'] as const
export type ArchiveState = (typeof ARCHIVE_STATES)[number]
