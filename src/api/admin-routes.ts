import { Readable } from 'node:stream'

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'

import type { AppContext } from '../app/context.ts'
import {
  leaderboardTable,
  submissionsTable,
  toCsv,
  toJson,
  type Table,
} from '../dashboard/exports.ts'
import { SUBMISSION_STATES } from '../domain/states.ts'
import { submitTag } from '../intake/submit-tag.ts'
import { cancelSubmission } from '../queue/cancel.ts'
import { requeueSubmission } from '../queue/requeue.ts'
import { isOrganizerOf, requireScope, type Caller } from './auth.ts'

const idParams = z.object({ id: z.coerce.number().int().positive() })
const actionBody = z.object({ reason: z.string().trim().min(1).max(500) }).strict()
const submitBody = z
  .object({
    forge: z.string().min(1),
    project: z.string().min(1),
    tag: z.string().min(1),
    participant: z.string().min(1),
    projectId: z.string().min(1).optional(),
  })
  .strict()
const submissionsExportQuery = z.object({
  challenge: z.string().min(1).optional(),
  state: z.enum(SUBMISSION_STATES).optional(),
})
const leaderboardExportQuery = z.object({
  challenge: z.string().min(1),
  round: z.string().min(1).optional(),
})

/**
 * Organizer actions and exports. Every action is recorded on the submission's timeline with
 * its actor (`operator:<token name>` or `organizer:<token name>`) and reason.
 *
 *   POST /api/submissions/42/cancel  {"reason":"duplicate of #41"}   → {"submissionId":42,"from":"queued",…}
 *   POST /api/submissions/42/requeue {"reason":"grader fixed"}       → {"submissionId":42,"attempt":2,…}
 *     (operators, and organizers of the submission's challenge; 409 when the state forbids it)
 *   POST /api/submit {"forge":"gitlab","project":"alice/iris","tag":"v3","participant":"alice"}
 *     → 202 {"status":"accepted","eventId":14,"commit":"a036…"}            (operators only)
 *   GET  /api/export/submissions.csv?challenge=iris[&state=scored]      (also .json)
 *   GET  /api/export/leaderboard.csv?challenge=iris[&round=round-1]     (also .json)
 */
export function adminRoutes(app: FastifyInstance, ctx: AppContext): void {
  const organizers = { preHandler: requireScope('operator', 'organizer') }
  const operators = { preHandler: requireScope('operator') }

  app.post('/api/submissions/:id/cancel', organizers, async (request, reply) => {
    const { id } = idParams.parse(request.params)
    const { reason } = actionBody.parse(request.body ?? {})
    const denied = await denyUnlessOrganizer(ctx, request, reply, id)
    if (denied) return denied
    const result = await cancelSubmission(ctx, id, { actor: actorOf(request.caller), reason })
    ctx.log.info(
      { submissionId: id, by: request.caller?.name, reason, from: result.from },
      'submission cancelled',
    )
    return result
  })

  app.post('/api/submissions/:id/requeue', organizers, async (request, reply) => {
    const { id } = idParams.parse(request.params)
    const { reason } = actionBody.parse(request.body ?? {})
    const denied = await denyUnlessOrganizer(ctx, request, reply, id)
    if (denied) return denied
    const result = await requeueSubmission(ctx, id, { actor: actorOf(request.caller), reason })
    ctx.log.info(
      { submissionId: id, by: request.caller?.name, reason, from: result.from },
      'submission re-queued',
    )
    return result
  })

  app.post('/api/submit', operators, async (request, reply) => {
    const body = submitBody.parse(request.body ?? {})
    const result = await submitTag(ctx, {
      forgeId: body.forge,
      projectPath: body.project,
      tag: body.tag,
      participantUsername: body.participant,
      ...(body.projectId ? { projectId: body.projectId } : {}),
    })
    ctx.queue.wake()
    ctx.log.info(
      { eventId: result.eventId, status: result.status, by: request.caller?.name },
      'tag submitted by hand',
    )
    return reply.code(result.status === 'accepted' ? 202 : 200).send(result)
  })

  for (const format of ['csv', 'json'] as const) {
    app.get(`/api/export/submissions.${format}`, organizers, async (request, reply) => {
      const query = submissionsExportQuery.parse(request.query)
      const challengeIds = exportedChallenges(request.caller, query.challenge)
      if (challengeIds === 'forbidden') return forbidden(reply, query.challenge)
      const table = submissionsTable(ctx, {
        challengeIds,
        ...(query.state ? { state: query.state } : {}),
      })
      return sendTable(reply, table, format, `submissions-${query.challenge ?? 'all'}`)
    })

    app.get(`/api/export/leaderboard.${format}`, organizers, async (request, reply) => {
      const query = leaderboardExportQuery.parse(request.query)
      if (!isOrganizerOf(request.caller, query.challenge)) return forbidden(reply, query.challenge)
      const table = await leaderboardTable(ctx, query.challenge, query.round)
      if (!table)
        return reply
          .code(404)
          .send({ error: 'not_found', message: `no challenge ${query.challenge}` })
      return sendTable(
        reply,
        table,
        format,
        `leaderboard-${query.challenge}${query.round ? `-${query.round}` : ''}`,
      )
    })
  }
}

/** `operator:ops-cli`, `organizer:iris-team`: how the timeline names who acted. */
function actorOf(caller: Caller | undefined): string {
  return `${caller?.scope ?? 'unknown'}:${caller?.name ?? 'unknown'}`
}

/** An organizer acts only on submissions of the challenges they organize. */
async function denyUnlessOrganizer(
  ctx: AppContext,
  request: FastifyRequest,
  reply: FastifyReply,
  id: number,
) {
  if (request.caller?.scope === 'operator') return null
  const row = await ctx.store.db
    .selectFrom('submissions')
    .select('challenge_id')
    .where('id', '=', id)
    .executeTakeFirst()
  if (!row)
    return reply.code(404).send({ error: 'not_found', message: `there is no submission ${id}` })
  if (row.challenge_id !== null && isOrganizerOf(request.caller, row.challenge_id)) return null
  return reply.code(403).send({
    error: 'forbidden',
    message: `submission ${id} is not in a challenge this token organizes`,
  })
}

/** The challenges an export covers; organizers with a list of challenges name one of theirs. */
function exportedChallenges(
  caller: Caller | undefined,
  challenge: string | undefined,
): readonly string[] | null | 'forbidden' {
  if (challenge !== undefined) return isOrganizerOf(caller, challenge) ? [challenge] : 'forbidden'
  if (caller?.scope === 'operator') return null
  return caller?.challenges ?? null
}

function forbidden(reply: FastifyReply, challenge: string | undefined) {
  return reply.code(403).send({
    error: 'forbidden',
    message: `this token does not organize ${challenge ?? 'every challenge'}`,
  })
}

function sendTable(reply: FastifyReply, table: Table, format: 'csv' | 'json', name: string) {
  const safeName = name.replace(/[^A-Za-z0-9._-]/g, '_')
  return reply
    .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8')
    .header('content-disposition', `attachment; filename="${safeName}.${format}"`)
    .header('cache-control', 'no-store')
    .send(Readable.from(format === 'csv' ? toCsv(table) : toJson(table)))
}
