import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'

import type { AppContext } from '../app/context.ts'
import { BadRequestError } from '../domain/errors.ts'
import { EventHub } from '../events/event-hub.ts'
import { latestCursor } from '../events/event-rows.ts'
import { runSseStream } from '../events/sse-stream.ts'
import { parseCursor, START, type Cursor, type LogEvent } from '../events/stream-event.ts'
import type { Submission } from '../store/schema.ts'
import { canSeeSubmission, isOrganizerOf, type Caller } from './auth.ts'
import { logPolicyFor } from './log-policy.ts'

const submissionParams = z.object({ id: z.coerce.number().int().positive() })
const challengeParams = z.object({ id: z.string().min(1).max(200) })
const streamQuery = z.object({
  /** Resume after this cursor (what `Last-Event-ID` carries); the header wins. */
  after: z.string().optional(),
  /** Seconds between keep-alive comments, for proxies with short idle timeouts. */
  keepalive: z.coerce.number().int().min(1).max(60).default(15),
})

/** More open streams than this in one process are refused with 503. */
const MAX_STREAMS = 1_000

/**
 * Live progress as server-sent events (docs/operating.md, "Live progress").
 *
 *   GET /api/submissions/42/events          the whole timeline, then live events
 *   GET /api/challenges/iris/events         live events of every submission of iris
 *     Last-Event-ID: 57                     resume after event 57 (or ?after=57)
 *
 *   id: 58
 *   event: state
 *   data: {"type":"timeline","id":58,"submissionId":42,"kind":"state","state":"building",…}
 *
 *   event: ready
 *   data: {"submissionId":42,"state":"building",…}
 *
 *   : keep-alive
 *
 * Event names: `state`, `stage`, `progress`, `note` (timeline entries) and `log` (a stage's
 * stored log, on submission streams only, whose ids are then `58.3`: timeline id, log id).
 * `ready` (no id) marks the end of the backlog. A participant token sees only its own
 * submissions' events, and their logs as the challenge's log policy allows (the same as
 * `GET /api/submissions/:id/logs`); an organizer token the events of its challenges.
 */
export function streamRoutes(app: FastifyInstance, ctx: AppContext): void {
  const hub = new EventHub(ctx.store, ctx.log.child({ part: 'events' }))
  // Open streams would keep the server from closing: end them first.
  app.addHook('preClose', (done) => {
    hub.stop()
    done()
  })

  app.get('/api/submissions/:id/events', async (request, reply) => {
    const { id } = submissionParams.parse(request.params)
    const query = streamQuery.parse(request.query)
    const after = resumeCursor(request, query.after)
    const caller = request.caller
    const submission = await ctx.store.db
      .selectFrom('submissions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()
    if (!submission || !canSeeSubmission(caller, submission)) {
      return reply.code(404).send({ error: 'not_found', message: `no submission ${id}` })
    }
    if (hub.listenerCount >= MAX_STREAMS) return tooMany(reply)

    reply.hijack()
    await runSseStream({
      hub,
      db: ctx.store.db,
      request: request.raw,
      response: reply.raw,
      log: ctx.log.child({ part: 'events', submissionId: id }),
      follow: { submissionId: id },
      canSee: (o) => canSeeSubmission(caller, o),
      withLogs: true,
      logText: logTextFor(caller, submission),
      after: after ?? START,
      keepAliveMs: query.keepalive * 1000,
      ready: () => submissionReady(ctx, id),
    })
  })

  app.get('/api/challenges/:id/events', async (request, reply) => {
    const { id } = challengeParams.parse(request.params)
    const query = streamQuery.parse(request.query)
    const after = resumeCursor(request, query.after)
    const caller = request.caller
    if (!ctx.challenges.get(id)) {
      return reply.code(404).send({ error: 'not_found', message: `no challenge ${id}` })
    }
    if (!mayFollowChallenge(caller, id)) {
      return reply
        .code(403)
        .send({ error: 'forbidden', message: `this token does not see challenge ${id}` })
    }
    if (hub.listenerCount >= MAX_STREAMS) return tooMany(reply)

    // Without a cursor a challenge stream starts now: its whole history could be large.
    const start = after ?? (await latestCursor(ctx.store.db))
    reply.hijack()
    await runSseStream({
      hub,
      db: ctx.store.db,
      request: request.raw,
      response: reply.raw,
      log: ctx.log.child({ part: 'events', challengeId: id }),
      follow: { challengeId: id },
      canSee: (o) => canSeeSubmission(caller, o),
      withLogs: false,
      after: { event: start.event, log: 0 },
      keepAliveMs: query.keepalive * 1000,
      ready: () => Promise.resolve({ challengeId: id }),
    })
  })
}

function resumeCursor(request: FastifyRequest, after: string | undefined): Cursor | null {
  const header = request.headers['last-event-id']
  const text = (Array.isArray(header) ? header[0] : header) ?? after
  if (text === undefined || text === '') return null
  const cursor = parseCursor(text)
  if (!cursor) {
    throw new BadRequestError(
      `Last-Event-ID (or after) looks like 57 or 57.3, not ${JSON.stringify(text)}`,
    )
  }
  return cursor
}

function mayFollowChallenge(caller: Caller | undefined, challengeId: string): boolean {
  if (!caller) return false
  // Participants follow a challenge too, and see only their own submissions' events.
  return (
    caller.scope === 'platform' ||
    caller.scope === 'participant' ||
    isOrganizerOf(caller, challengeId)
  )
}

async function submissionReady(ctx: AppContext, id: number) {
  const row = await ctx.store.db
    .selectFrom('submissions')
    .select(['state', 'status_detail', 'stage', 'score'])
    .where('id', '=', id)
    .executeTakeFirstOrThrow()
  return {
    submissionId: id,
    state: row.state,
    statusDetail: row.status_detail,
    stage: row.stage,
    score: row.score,
  }
}

/** The challenge's log policy (src/api/log-policy.ts), as the logs route applies it. */
function logTextFor(
  caller: Caller | undefined,
  submission: Submission,
): (event: LogEvent) => string | null {
  const policy = logPolicyFor(caller, submission)
  return (event) => policy(event.stage, event.text)
}

function tooMany(reply: FastifyReply) {
  return reply.code(503).header('retry-after', '10').send({
    error: 'unavailable',
    message: 'too many open event streams on this proctor; retry in a few seconds',
  })
}
