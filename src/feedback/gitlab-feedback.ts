import { createHash } from 'node:crypto'

import type { Logger } from 'pino'

import type { ForgeConfig } from '../config/proctor-config.ts'
import type { Clock } from '../domain/clock.ts'
import type { SubmissionState } from '../domain/states.ts'
import {
  DELIVERED,
  PermanentDeliveryError,
  type DeliveryResult,
  type OutboxMessage,
  type OutboxTarget,
} from '../outbox/target.ts'
import { submissionUrl } from '../platform/updates.ts'
import type { Store } from '../store/database.ts'
import type { Submission } from '../store/schema.ts'
import type { ForgeFeedbackConfig } from './feedback-config.ts'
import { FeedbackStore, type FeedbackRecord } from './feedback-store.ts'
import { GitlabApi, type CommitStatusState } from './gitlab-api.ts'
import { issueTitle, loadIssueView, renderIssue } from './issue-text.ts'

export interface GitlabFeedbackDeps {
  readonly store: Store
  readonly clock: Clock
  readonly log: Logger
  readonly publicUrl: string | undefined
  /** Removes configured secrets: an issue body carries log lines. */
  readonly redact: (text: string) => string
}

const DESCRIPTION_LIMIT = 255

/**
 * Feedback on a GitLab forge, as the outbox target `forge:<id>`: durable and in order like
 * every other target.
 *
 * - Commit status on the tagged commit: pending (queued) → running (building, evaluating)
 *   → success (scored) | failed (failed, rejected) | canceled, linking to the submission
 *   page. Posted only when it differs from the last one posted.
 * - One issue per submission in the participant's project, opened at its first change
 *   (accepted, rejected or over quota) and edited in place. The text is rendered from the
 *   store at delivery, so messages that queued up during an outage collapse into one edit;
 *   an edit is skipped when the text is unchanged and waits while the last edit is younger
 *   than `issueMinIntervalSeconds`.
 */
export class GitlabFeedback implements OutboxTarget {
  readonly id: string
  readonly #forge: ForgeConfig
  readonly #feedback: ForgeFeedbackConfig
  readonly #api: GitlabApi
  readonly #records: FeedbackStore
  readonly #deps: GitlabFeedbackDeps

  constructor(forge: ForgeConfig, deps: GitlabFeedbackDeps) {
    if (!forge.apiToken) throw new Error(`forge ${forge.id}: feedback needs apiToken`)
    this.id = `forge:${forge.id}`
    this.#forge = forge
    this.#feedback = forge.feedback
    this.#api = new GitlabApi({
      apiUrl: forge.apiUrl ?? `${forge.baseUrl.replace(/\/+$/, '')}/api/v4`,
      token: forge.apiToken,
      timeoutMs: forge.feedback.timeoutMs,
    })
    this.#records = new FeedbackStore(deps.store)
    this.#deps = deps
  }

  async deliver(message: OutboxMessage, signal: AbortSignal): Promise<DeliveryResult> {
    const submission = await this.#deps.store.db
      .selectFrom('submissions')
      .selectAll()
      .where('id', '=', message.submissionId)
      .executeTakeFirst()
    if (!submission) {
      throw new PermanentDeliveryError(`submission ${message.submissionId} no longer exists`)
    }
    const record = await this.#records.load(submission.id, this.#forge.id)

    if (this.#feedback.commitStatus) await this.#commitStatus(message, submission, record, signal)
    if (this.#feedback.issue && submission.state !== 'received') {
      return this.#issue(submission, record, signal)
    }
    return DELIVERED
  }

  async #commitStatus(
    message: OutboxMessage,
    submission: Submission,
    record: FeedbackRecord,
    signal: AbortSignal,
  ): Promise<void> {
    const state = commitStatusOf(message.payload.state)
    if (record.commit_status === state) return
    const description = this.#deps.redact(`${message.payload.state}: ${message.payload.message}`)
    await this.#api.setCommitStatus(
      submission.project_id,
      submission.commit_sha,
      {
        state,
        name: this.#feedback.statusName,
        ref: submission.tag,
        description: truncate(description, DESCRIPTION_LIMIT),
        targetUrl: submissionUrl(this.#deps.publicUrl, submission.id),
      },
      signal,
    )
    await this.#records.commitStatusSet(record, state, this.#deps.clock.now())
  }

  async #issue(
    submission: Submission,
    record: FeedbackRecord,
    signal: AbortSignal,
  ): Promise<DeliveryResult> {
    const view = await loadIssueView(this.#deps.store.db, submission, {
      publicUrl: this.#deps.publicUrl,
      logTailLines: this.#feedback.logTailLines,
    })
    const title = issueTitle(submission)
    const body = this.#deps.redact(renderIssue(view))
    const digest = createHash('sha256').update(`${title}\n${body}`).digest('hex')
    const project = submission.project_id
    const now = this.#deps.clock.now()

    let iid = record.issue_iid
    let updatedAt = record.issue_updated_at
    let knownDigest = record.issue_digest
    if (iid === null) {
      // A create whose answer was lost may have opened the issue: look before opening one.
      const found =
        record.issue_state === 'creating'
          ? await this.#api.findIssueByTitle(project, title, signal)
          : null
      if (found === null) {
        await this.#records.issueCreating(record)
        const created = await this.#api.createIssue(
          project,
          { title, description: body, labels: this.#feedback.labels },
          signal,
        )
        await this.#records.issueCreated(record, created, digest, now)
        this.#deps.log.debug({ submissionId: submission.id, iid: created }, 'issue opened')
        return DELIVERED
      }
      await this.#records.issueCreated(record, found, null, null)
      iid = found
      updatedAt = null
      knownDigest = null
    }

    if (knownDigest === digest) return DELIVERED
    const minIntervalMs = this.#feedback.issueMinIntervalSeconds * 1000
    if (updatedAt && now.getTime() - new Date(updatedAt).getTime() < minIntervalMs) {
      return { outcome: 'deferred', until: new Date(new Date(updatedAt).getTime() + minIntervalMs) }
    }
    await this.#api.editIssue(project, iid, body, signal)
    await this.#records.issueEdited(record, digest, now)
    return DELIVERED
  }
}

export function commitStatusOf(state: SubmissionState): CommitStatusState {
  switch (state) {
    case 'received':
    case 'queued':
      return 'pending'
    case 'building':
    case 'evaluating':
      return 'running'
    case 'scored':
      return 'success'
    case 'failed':
    case 'rejected':
      return 'failed'
    case 'cancelled':
      return 'canceled'
  }
}

function truncate(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`
}
