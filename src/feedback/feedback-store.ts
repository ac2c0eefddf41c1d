import type { Selectable } from 'kysely'

import { reportingDb, type ForgeFeedbackTable } from '../outbox/tables.ts'
import type { Store } from '../store/database.ts'

export type FeedbackRecord = Selectable<ForgeFeedbackTable>

/**
 * What proctor has put on a forge for a submission, one row per (submission, forge). Each
 * step is written as soon as the forge confirmed it, so a repeated delivery of the same
 * message finds the work done and does nothing twice.
 */
export class FeedbackStore {
  readonly #store: Store

  constructor(store: Store) {
    this.#store = store
  }

  async load(submissionId: number, forge: string): Promise<FeedbackRecord> {
    const rdb = reportingDb(this.#store.db)
    await rdb
      .insertInto('forge_feedback')
      .values({ submission_id: submissionId, forge })
      .onConflict((oc) => oc.columns(['submission_id', 'forge']).doNothing())
      .execute()
    return rdb
      .selectFrom('forge_feedback')
      .selectAll()
      .where('submission_id', '=', submissionId)
      .where('forge', '=', forge)
      .executeTakeFirstOrThrow()
  }

  async commitStatusSet(record: FeedbackRecord, state: string, at: Date): Promise<void> {
    await this.#update(record, { commit_status: state, commit_status_at: at.toISOString() })
  }

  /** Written before the create call: if no answer comes back, the next try searches first. */
  async issueCreating(record: FeedbackRecord): Promise<void> {
    await this.#update(record, { issue_state: 'creating' })
  }

  /** `digest` null: the issue's text is not known to be current (found by search). */
  async issueCreated(
    record: FeedbackRecord,
    iid: number,
    digest: string | null,
    at: Date | null,
  ): Promise<void> {
    await this.#update(record, {
      issue_iid: iid,
      issue_state: 'created',
      issue_digest: digest,
      issue_updated_at: at?.toISOString() ?? null,
    })
  }

  async issueEdited(record: FeedbackRecord, digest: string, at: Date): Promise<void> {
    await this.#update(record, { issue_digest: digest, issue_updated_at: at.toISOString() })
  }

  async #update(
    record: FeedbackRecord,
    set: Partial<Omit<FeedbackRecord, 'id' | 'submission_id' | 'forge'>>,
  ): Promise<void> {
    await reportingDb(this.#store.db)
      .updateTable('forge_feedback')
      .set(set)
      .where('id', '=', record.id)
      .execute()
  }
}
