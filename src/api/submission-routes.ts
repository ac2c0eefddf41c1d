import type { FastifyInstance } from 'fastify'
import { z } from 'zod'

import type { AppContext } from '../app/context.ts'
import { SUBMISSION_STATES } from '../domain/states.ts'
import { quotaStatus } from '../quota/charges.ts'
import { quotaPolicy } from '../quota/policy.ts'
import type { Submission } from '../store/schema.ts'
import { canSeeSubmission, visibleSubmissionsFilter, type Caller } from './auth.ts'
import { logPolicyFor } from './log-policy.ts'
import { submissionDetail, submissionSummary } from './submission-view.ts'

const idParams = z.object({ id: z.coerce.number().int().positive() })

const listQuery = z.object({
  challenge: z.string().optional(),
  state: z.enum(SUBMISSION_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  before: z.coerce.number().int().positive().optional(),
})

const quotaQuery = z.object({
  challenge: z.string(),
  participant: z.string(),
  round: z.string().optional(),
  debug: z.enum(['true', 'false']).optional(),
})

/**
 * Read routes for submissions.
 *
 *   GET /api/submissions?challenge=iris&state=failed&limit=20
 *   GET /api/submissions/42          → the submission, its timeline, evaluations and job
 *   GET /api/submissions/42/logs     → captured logs per evaluation and stage
 *   GET /api/events/42               → the hook event and the submission it became
 *   GET /api/quota?challenge=iris&participant=alice
 */
export function submissionRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { db } = ctx.store

  /** A submission the caller may not see answers exactly like one that does not exist. */
  async function loadVisibleSubmission(
    id: number,
    caller: Caller | undefined,
  ): Promise<Submission | undefined> {
    const submission = await db
      .selectFrom('submissions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()
    return submission && canSeeSubmission(caller, submission) ? submission : undefined
  }

  app.get('/api/submissions', async (request) => {
    const query = listQuery.parse(request.query)
    let select = db
      .selectFrom('submissions')
      .selectAll()
      .where(visibleSubmissionsFilter(request.caller))
      .orderBy('id', 'desc')
      .limit(query.limit)
    if (query.challenge) select = select.where('challenge_id', '=', query.challenge)
    if (query.state) select = select.where('state', '=', query.state)
    if (query.before) select = select.where('id', '<', query.before)
    const rows = await select.execute()
    return { submissions: rows.map(submissionSummary) }
  })

  app.get('/api/submissions/:id', async (request, reply) => {
    const { id } = idParams.parse(request.params)
    const submission = await loadVisibleSubmission(id, request.caller)
    if (!submission)
      return reply.code(404).send({ error: 'not_found', message: `no submission ${id}` })
    return submissionDetail(db, submission)
  })

  app.get('/api/submissions/:id/logs', async (request, reply) => {
    const { id } = idParams.parse(request.params)
    const submission = await loadVisibleSubmission(id, request.caller)
    if (!submission)
      return reply.code(404).send({ error: 'not_found', message: `no submission ${id}` })
    const evaluations = await db
      .selectFrom('evaluations')
      .select(['id', 'number'])
      .where('submission_id', '=', id)
      .execute()
    if (evaluations.length === 0)
      return reply
        .code(404)
        .send({ error: 'not_found', message: `no evaluations for submission ${id}` })
    const policy = logPolicyFor(request.caller, submission)
    const logs = await db
      .selectFrom('logs')
      .selectAll()
      .where(
        'evaluation_id',
        'in',
        evaluations.map((e) => e.id),
      )
      .orderBy('id')
      .execute()
    return {
      logs: logs.flatMap((l) => {
        const shown = policy(l.stage, l.content)
        if (shown === null) return []
        return [
          {
            evaluation: evaluations.find((e) => e.id === l.evaluation_id)?.number,
            stage: l.stage,
            text: shown,
            bytesTotal: Number(l.bytes_total),
            bytesElided: Number(l.bytes_elided),
          },
        ]
      }),
    }
  })

  app.get('/api/events/:id', async (request, reply) => {
    const { id } = idParams.parse(request.params)
    const event = await db
      .selectFrom('hook_events')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()
    // Hook events are operators' business: they name projects and pushers.
    if (!event || !['operator', 'platform'].includes(request.caller?.scope ?? '')) {
      return reply.code(404).send({ error: 'not_found', message: `no hook event ${id}` })
    }
    return {
      id: event.id,
      forge: event.forge,
      kind: event.event_kind,
      status: event.status,
      reason: event.reason,
      project: event.project_path,
      tag: event.tag,
      duplicates: event.duplicate_count,
      submissionId: event.submission_id,
      receivedAt: event.received_at,
      processedAt: event.processed_at,
    }
  })

  app.get('/api/quota', async (request, reply) => {
    const query = quotaQuery.parse(request.query)
    const challenge = ctx.challenges.get(query.challenge)
    if (!challenge)
      return reply
        .code(404)
        .send({ error: 'not_found', message: `no challenge ${query.challenge}` })
    const participant = await db
      .selectFrom('participants')
      .selectAll()
      .where('username', '=', query.participant)
      .executeTakeFirst()
    const subject = participant?.team ? `team:${participant.team}` : query.participant
    const debug = query.debug === 'true'
    // The same policy the intake charges by, so the answer matches what a push would get.
    const policy = quotaPolicy(challenge.definition, { roundId: query.round ?? null, debug })
    const status = await quotaStatus(
      db,
      { challengeId: challenge.definition.id, roundId: policy.roundId, subject, debug },
      policy.window,
      policy.limit,
      ctx.clock.now(),
    )
    return { challenge: challenge.definition.id, subject, ...status }
  })

  app.get('/api/queues', async () => ({ queues: await ctx.queue.depth() }))
}
