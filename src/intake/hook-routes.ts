import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

import type { AppContext } from '../app/context.ts'
import type { ForgeConfig } from '../config/proctor-config.ts'
import { adapterFor, BodyError } from './forges/index.ts'
import { recordForgeEvent, StoreUnavailableError } from './record-event.ts'

export interface HookRoutesOptions {
  ctx: AppContext
}

interface HookParams {
  forgeId: string
}

/**
 * `POST /hooks/<forge id>`: where forges deliver push events. One route per configured forge
 * (`forges[].id` in proctor.yaml); a suffix (`/hooks/gitlab/system`, `/hooks/gitlab/project`)
 * is accepted and ignored, so operators can tell hooks apart in the forge's UI: deliveries
 * are classified by their body.
 *
 *   curl -X POST http://127.0.0.1:8080/hooks/gitlab -H 'X-Gitlab-Token: …' -d @tag-push.json
 *   → 202 {"status":"accepted","eventId":12}
 *
 * Answers, in the order they are decided:
 * - 404 unknown forge; 413 body over `server.bodyLimitBytes`
 * - 401 missing or wrong secret, before the body is parsed or anything is stored
 * - 400 not JSON, or a field the forge always sends is missing or of the wrong type
 * - 200 `{status:'ignored', reason, eventId}`: branch push, tag deletion, test, other events
 * - 202 `{status:'accepted', eventId}`: a new tag push, stored with its intake job
 * - 200 `{status:'duplicate', eventId, submissionId, message}`: seen before (same forge and
 *   Idempotency-Key, or same project, tag ref and `after`); names the first event
 * - 503 the database could not store it: nothing was recorded, retry
 *
 * Registered without fastify-plugin on purpose: the raw-body parser and error handler stay
 * inside this plugin and do not change the rest of the API.
 */
export function hookRoutes(
  app: FastifyInstance,
  options: HookRoutesOptions,
  done: (err?: Error) => void,
): void {
  const { ctx } = options
  const forges = new Map<string, ForgeConfig>(ctx.config.forges.map((f) => [f.id, f]))
  const bodyLimit = ctx.config.server.bodyLimitBytes

  // Signatures are computed over the exact bytes sent, so every content type is kept raw.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit },
    function keepRawBody(_req, body, done) {
      done(null, body)
    },
  )
  app.setErrorHandler(answerHookError)

  async function receiveHook(request: FastifyRequest<{ Params: HookParams }>, reply: FastifyReply) {
    const forge = forges.get(request.params.forgeId)
    if (!forge) {
      return reply.code(404).send({
        error: 'unknown_forge',
        message: `no forge with id ${JSON.stringify(request.params.forgeId)} is configured`,
      })
    }

    const delivery = {
      headers: request.headers,
      rawBody: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
    }
    const adapter = adapterFor(forge.kind)
    const verified = adapter.verify(delivery, forge.hookSecrets)
    if (!verified.ok) {
      request.log.warn({ forgeId: forge.id }, 'hook refused: secret missing or wrong')
      return reply.code(401).send({ error: 'unauthorized', message: verified.message })
    }

    let body: unknown
    try {
      body = adapter.decode(delivery)
    } catch (err) {
      if (!(err instanceof BodyError)) throw err
      return reply.code(400).send({ error: 'malformed', field: '(body)', message: err.message })
    }
    const event = adapter.parse(body, delivery, forge)
    if (event.kind === 'malformed') {
      return reply
        .code(400)
        .send({ error: 'malformed', field: event.field, message: event.message })
    }

    const result = await recordForgeEvent(ctx, forge.id, event)
    const logged = { forgeId: forge.id, eventId: result.eventId, status: result.status }
    switch (result.status) {
      case 'accepted':
        request.log.info(
          { ...logged, projectId: event.projectId, ref: event.ref },
          'tag push accepted',
        )
        return reply.code(202).send({ status: 'accepted', eventId: result.eventId })
      case 'ignored':
        request.log.info(logged, 'hook ignored')
        return reply
          .code(200)
          .send({ status: 'ignored', reason: result.reason, eventId: result.eventId })
      case 'duplicate':
        request.log.info(logged, 'duplicate hook delivery')
        return reply.code(200).send({
          status: 'duplicate',
          eventId: result.eventId,
          ...(result.submissionId === null ? {} : { submissionId: result.submissionId }),
          message: result.message,
        })
    }
  }

  app.post('/hooks/:forgeId', { bodyLimit }, receiveHook)
  app.post('/hooks/:forgeId/:source', { bodyLimit }, receiveHook)
  done()
}

function answerHookError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof StoreUnavailableError) {
    request.log.error({ err: error.cause }, 'hook not stored: database unavailable')
    return reply.code(503).send({ error: 'unavailable', message: error.message })
  }
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return reply.code(413).send({
      error: 'too_large',
      message: 'the body is larger than this server accepts (server.bodyLimitBytes)',
    })
  }
  const status = error.statusCode ?? 500
  if (status >= 400 && status < 500) {
    return reply.code(status).send({ error: 'bad_request', message: error.message })
  }
  request.log.error({ err: error }, 'hook failed')
  return reply
    .code(500)
    .send({ error: 'internal', message: 'proctor failed to handle the delivery' })
}
