import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { ZodError } from 'zod'

import type { AppContext } from '../app/context.ts'
import { dashboardRoutes } from '../dashboard/dashboard-routes.ts'
import { BadRequestError, ProctorError } from '../domain/errors.ts'
import { hookRoutes } from '../intake/hook-routes.ts'
import { archiveRoutes } from './archive-routes.ts'
import { metricsRoutes } from '../metrics/metrics-routes.ts'
import { adminRoutes } from './admin-routes.ts'
import { bearerAuth } from './auth.ts'
import { leaderboardRoutes } from './leaderboard-routes.ts'
import { outboxRoutes } from './outbox-routes.ts'
import { rerunRoutes } from './rerun-routes.ts'
import { streamRoutes } from './stream-routes.ts'
import { submissionRoutes } from './submission-routes.ts'
import { tokenRoutes } from './token-routes.ts'

/**
 * The HTTP API. Hook routes authenticate with forge secrets; `/health` is open; every other
 * route needs a bearer token. Bad input is a 4xx with a message, never a 500.
 */
export async function buildServer(ctx: AppContext): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: ctx.log.child({ part: 'api' }) as FastifyBaseLogger,
    bodyLimit: ctx.config.server.bodyLimitBytes,
    disableRequestLogging: true,
  })

  app.setErrorHandler((err, request, reply) => {
    if (err instanceof ZodError) {
      const issue = err.issues[0]
      return reply
        .code(400)
        .send({
          error: 'bad_request',
          message: `${issue?.path.join('.') || 'request'}: ${issue?.message ?? 'invalid'}`,
        })
    }
    if (err instanceof BadRequestError)
      return reply.code(err.status).send({ error: err.code, message: err.message })
    const status = (err as { statusCode?: number }).statusCode
    if (status && status >= 400 && status < 500) {
      return reply
        .code(status)
        .send({
          error: (err as { code?: string }).code ?? 'bad_request',
          message: (err as Error).message,
        })
    }
    const code = err instanceof ProctorError ? err.code : 'internal'
    request.log.error(
      { err, url: request.url },
      'request failed; this is a bug or an outage, see the error',
    )
    return reply
      .code(500)
      .send({
        error: code,
        message: 'proctor failed to handle this request; the operators have the details in its log',
      })
  })

  app.get('/health', () => Promise.resolve({ ok: true }))
  // Before the hook routes: its onSend hook counts their answers.
  metricsRoutes(app, ctx)

  await app.register(hookRoutes, { ctx })
  await app.register(dashboardRoutes, { ctx })
  // Leaderboards authenticate themselves: some are public.
  await app.register((boards) => Promise.resolve(leaderboardRoutes(boards, ctx)))

  await app.register((api) => {
    api.addHook('onRequest', bearerAuth(ctx.config, ctx.store.db))
    submissionRoutes(api, ctx)
    rerunRoutes(api, ctx)
    tokenRoutes(api, ctx)
    outboxRoutes(api, ctx)
    archiveRoutes(api, ctx)
    streamRoutes(api, ctx)
    adminRoutes(api, ctx)
    return Promise.resolve()
  })

  return app
}
