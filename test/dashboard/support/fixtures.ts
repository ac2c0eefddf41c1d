import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

import type { SubmissionState } from '../../../src/domain/states.ts'
import type { Executor } from '../../../src/store/transaction.ts'
import { moveSubmission } from '../../../src/submissions/transitions.ts'
import { appendTimeline } from '../../../src/submissions/timeline.ts'

let events = 0

/**
 * A submission row as intake leaves it (`received`, with its first timeline entry), for
 * tests that drive its lifecycle through the real transitions afterwards. No hook event
 * row: these tests do not read one.
 */
export async function insertSubmission(
  db: Executor,
  options: {
    challengeId?: string
    participantId?: number | null
    tag?: string
    at?: Date
    state?: SubmissionState
    stateChangedAt?: Date
    reasonCode?: string | null
  } = {},
): Promise<number> {
  const at = options.at ?? new Date()
  const tag = options.tag ?? `v${++events}`
  const row = await db
    .insertInto('submissions')
    .values({
      event_id: 1_000_000 + ++events,
      challenge_id: options.challengeId ?? 'iris',
      round_id: null,
      forge: 'gitlab',
      project_id: '9001',
      project_path: 'alice/iris',
      tag,
      commit_sha: 'c'.repeat(40),
      participant_id: options.participantId ?? null,
      pusher_username: 'alice',
      quota_subject: 'alice',
      authors_json: '[]',
      manifest_extra_json: '{}',
      state: options.state ?? 'received',
      reason_code: options.reasonCode ?? null,
      status_detail: 'received; checking crowdai.json',
      archive: 'pending',
      created_at: at.toISOString(),
      updated_at: at.toISOString(),
      state_changed_at: (options.stateChangedAt ?? at).toISOString(),
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  const id = Number(row.id)
  await appendTimeline(db, {
    submissionId: id,
    kind: 'state',
    state: options.state ?? 'received',
    message: 'received; checking crowdai.json',
    actor: 'proctor',
    at,
  })
  return id
}

/** Moves a submission along the real transition path (timeline, outbox and all). */
export async function move(
  db: Executor,
  id: number,
  to: SubmissionState,
  options: { message?: string; score?: number; reasonCode?: 'build_failed' | 'crashed' } = {},
): Promise<void> {
  await moveSubmission(db, id, {
    to,
    message: options.message ?? `now ${to}`,
    actor: 'test',
    at: new Date(),
    ...(options.reasonCode ? { reasonCode: options.reasonCode } : {}),
    ...(options.score === undefined ? {} : { set: { score: options.score } }),
  })
}

/** An evaluation and a stored stage log for a submission; returns the log's id. */
export async function insertLog(
  db: Executor,
  submissionId: number,
  stage: string,
  text: string,
): Promise<number> {
  let evaluation = await db
    .selectFrom('evaluations')
    .select('id')
    .where('submission_id', '=', submissionId)
    .executeTakeFirst()
  if (!evaluation) {
    evaluation = await db
      .insertInto('evaluations')
      .values({
        submission_id: submissionId,
        number: 1,
        kind: 'first',
        state: 'running',
        created_at: new Date().toISOString(),
      })
      .returning('id')
      .executeTakeFirstOrThrow()
  }
  const row = await db
    .insertInto('logs')
    .values({
      evaluation_id: Number(evaluation.id),
      stage,
      content: text,
      bytes_total: Buffer.byteLength(text),
      bytes_elided: 0,
      created_at: new Date().toISOString(),
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return Number(row.id)
}

export async function participantId(db: Executor, username: string): Promise<number> {
  const row = await db
    .selectFrom('participants')
    .select('id')
    .where('username', '=', username)
    .executeTakeFirstOrThrow()
  return Number(row.id)
}

/** Polls `check` until it returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

export interface WebhookReceiver {
  readonly url: string
  readonly bodies: unknown[]
  /** The status the next deliveries get (default 200). */
  status: number
  close(): Promise<void>
}

/** A real HTTP server standing in for the alert webhook (Slack, ntfy…). */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const bodies: unknown[] = []
  const receiver = { bodies, status: 200 } as { bodies: unknown[]; status: number }
  const server: Server = createServer((request: IncomingMessage, response) => {
    let text = ''
    request.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')))
    request.on('end', () => {
      bodies.push(JSON.parse(text) as unknown)
      response.statusCode = receiver.status
      response.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${port}/hook`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  })
}
