import path from 'node:path'

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'

import type { AppContext } from '../app/context.ts'
import { bearerAuth, requireScope } from '../api/auth.ts'
import { evaluateAlerts } from '../metrics/alert-conditions.ts'
import { loadOverview } from './overview.ts'
import { loadStaticFiles, type StaticFile } from './static-files.ts'
import { listWorkers } from './workers-view.ts'

const STATIC_DIR = path.join(import.meta.dirname, 'static')

const overviewQuery = z.object({ hours: z.coerce.number().int().min(1).max(72).default(12) })

/**
 * The operators' dashboard: static pages (no build step, no framework) that call the API with
 * the token the operator pastes, kept in the tab's sessionStorage. Pages need no token;
 * every piece of data does.
 *
 *   GET /                                  → redirect to /dashboard/
 *   GET /dashboard/…                       → the page shell (the page is chosen in the browser)
 *   GET /dashboard/static/app.js           → its files
 *   GET /api/whoami                        → {"name":"ops","scope":"operator","challenges":null}
 *   GET /api/overview?hours=12             → per challenge: queue, running jobs, hourly counts
 *   GET /api/workers                       → workers, what they run, their last heartbeat
 *   GET /api/alerts                        → the alert conditions holding now
 */
export async function dashboardRoutes(
  app: FastifyInstance,
  options: { ctx: AppContext },
): Promise<void> {
  const { ctx } = options
  const files = loadStaticFiles(STATIC_DIR)
  const shell = files.get('index.html')
  if (!shell) throw new Error(`the dashboard's index.html is missing from ${STATIC_DIR}`)

  app.get('/', async (_request, reply) => reply.redirect('/dashboard/'))
  app.get('/dashboard', async (_request, reply) => reply.redirect('/dashboard/'))
  app.get('/dashboard/static/*', async (request, reply) => {
    const file = files.get((request.params as { '*': string })['*'])
    if (!file)
      return reply.code(404).send({ error: 'not_found', message: 'no such dashboard file' })
    return sendFile(request, reply, file)
  })
  app.get('/dashboard/*', async (request, reply) => sendFile(request, reply, shell))

  const readers = { preHandler: requireScope('operator', 'organizer', 'platform') }
  const operators = { preHandler: requireScope('operator') }
  await app.register(function dashboardApi(api, _options, done) {
    api.addHook('onRequest', bearerAuth(ctx.config, ctx.store.db))

    api.get('/api/whoami', (request) => ({
      name: request.caller?.name,
      scope: request.caller?.scope,
      challenges: request.caller?.challenges ?? null,
    }))

    api.get('/api/overview', readers, async (request) => {
      const { hours } = overviewQuery.parse(request.query)
      const caller = request.caller
      const challengeIds = caller?.scope === 'organizer' ? caller.challenges : null
      return loadOverview(ctx, { hours, challengeIds })
    })

    api.get('/api/workers', operators, async () => ({ workers: await listWorkers(ctx) }))

    api.get('/api/alerts', operators, async () => ({ alerts: await evaluateAlerts(ctx) }))
    done()
  })
}

function sendFile(request: FastifyRequest, reply: FastifyReply, file: StaticFile) {
  void reply
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cache-control', 'no-cache')
    .header('etag', file.etag)
  if (request.headers['if-none-match'] === file.etag) return reply.code(304).send()
  return reply.type(file.type).send(file.body)
}

/** Only the dashboard's own files and API: no inline script, nothing from elsewhere. */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ')
