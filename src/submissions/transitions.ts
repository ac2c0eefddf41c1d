import { isRefunded, isReasonCode, type ReasonCode } from '../domain/reasons.ts'
import { ProctorError } from '../domain/errors.ts'
import { canMove, type SubmissionState } from '../domain/states.ts'
import type { SubmissionUpdate } from '../store/schema.ts'
import { inTransaction, type Executor } from '../store/transaction.ts'
import { refundCharge } from '../quota/charges.ts'
import { recordOutgoing } from '../outbox/record.ts'
import { appendTimeline } from './timeline.ts'

export interface MoveOptions {
  to: SubmissionState
  /** Why, in words a participant can act on; also becomes the status detail. */
  message: string
  reasonCode?: ReasonCode | null
  /** Who moved it: `proctor`, `worker:<id>`, `organizer:<name>`, `platform`. */
  actor: string
  at: Date
  /** Refuse the move unless the submission is in one of these states (guards races). */
  from?: readonly SubmissionState[]
  /** Extra columns written with the move (score, image digest…). */
  set?: SubmissionUpdate
  evaluationId?: number | null
}

export class IllegalTransitionError extends ProctorError {
  constructor(submissionId: number, from: string, to: string) {
    super(
      'illegal_transition',
      `submission ${submissionId} cannot move from ${from} to ${to}; it was changed by someone else meanwhile`,
    )
  }
}

/**
 * Moves a submission to a new state, with its reason, in one transaction: the row, the
 * timeline entry and (for failures proctor caused) the quota refund commit together.
 */
export async function moveSubmission(
  db: Executor,
  submissionId: number,
  options: MoveOptions,
): Promise<void> {
  await inTransaction(db, async (trx) => {
    const current = await trx
      .selectFrom('submissions')
      .select(['state'])
      .where('id', '=', submissionId)
      .executeTakeFirstOrThrow()

    const from = current.state
    const allowedFrom = options.from
    if ((allowedFrom && !allowedFrom.includes(from)) || !canMove(from, options.to)) {
      throw new IllegalTransitionError(submissionId, from, options.to)
    }

    const at = options.at.toISOString()
    await trx
      .updateTable('submissions')
      .set({
        ...options.set,
        state: options.to,
        reason_code: options.reasonCode ?? null,
        reason_message: options.reasonCode ? options.message : null,
        status_detail: options.message,
        updated_at: at,
        state_changed_at: at,
      })
      .where('id', '=', submissionId)
      .execute()

    await appendTimeline(trx, {
      submissionId,
      evaluationId: options.evaluationId ?? null,
      kind: 'state',
      state: options.to,
      reasonCode: options.reasonCode ?? null,
      message: options.message,
      actor: options.actor,
      at: options.at,
    })

    const code = options.reasonCode
    if (code && isReasonCode(code) && isRefunded(code)) {
      await refundCharge(trx, submissionId, code, options.at)
    }

    // The platform and the forge learn of the move through the outbox, committed with it.
    await recordOutgoing(trx, {
      submissionId,
      event: 'state',
      state: options.to,
      previousState: from,
      reasonCode: options.reasonCode ?? null,
      message: options.message,
      at: options.at,
      evaluationId: options.evaluationId ?? null,
    })
  })
}

/** Records what the submission is doing now without changing its state. */
export async function noteSubmission(
  db: Executor,
  submissionId: number,
  note: {
    message: string
    actor: string
    at: Date
    stage?: string
    evaluationId?: number | null
    kind?: 'stage' | 'progress' | 'note'
    /** Record on the timeline only; the submission's status stays (re-runs use this). */
    keepStatus?: boolean
  },
): Promise<void> {
  await inTransaction(db, async (trx) => {
    if (!note.keepStatus) {
      await trx
        .updateTable('submissions')
        .set({
          status_detail: note.message,
          updated_at: note.at.toISOString(),
          ...(note.stage ? { stage: note.stage } : {}),
        })
        .where('id', '=', submissionId)
        .execute()
    }
    await appendTimeline(trx, {
      submissionId,
      evaluationId: note.evaluationId ?? null,
      kind: note.kind ?? (note.stage ? 'stage' : 'note'),
      stage: note.stage ?? null,
      message: note.message,
      actor: note.actor,
      at: note.at,
    })
  })
}
