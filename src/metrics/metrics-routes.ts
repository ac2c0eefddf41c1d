import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { collectDefaultMetrics, Counter, Registry } from 'prom-client'

import type { AppContext } from '../app/context.ts'
import { TokenAuthenticator } from '../api/auth.ts'
import { errorMessage } from '../domain/errors.ts'
import { registerArchiveGauge } from './archive-gauge.ts'
import { registerStageHistogram } from './stage-histogram.ts'
import { registerStoreGauges } from './store-gauges.ts'

/**
 * `GET /metrics` in Prometheus' text format, for an operator token:
 *
 *   scrape_configs:
 *     - job_name: proctor
 *       authorization: { credentials_file: /etc/prometheus/proctor-token }
 *       static_configs: [{ targets: ['proctor.example.org:8080'] }]
 *
 * Hook deliveries are counted as this process answers them; everything else is read from the
 * store at scrape time (src/metrics/store-gauges.ts). Call this on the root instance, before
 * the hook routes are registered: its onSend hook must see them.
 */
export function metricsRoutes(app: FastifyInstance, ctx: AppContext): void {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  registerStoreGauges(registry, ctx)
  registerStageHistogram(registry, ctx)
  registerArchiveGauge(registry, ctx, ctx.log.child({ part: 'metrics' }))
  const hooks = new Counter({
    name: 'proctor_hooks_received_total',
    help: 'Forge hook deliveries answered by this process, by forge and outcome.',
    labelNames: ['forge', 'outcome'] as const,
    registers: [registry],
  })
  const forges = new Set(ctx.config.forges.map((f) => f.id))

  app.addHook('onSend', function countHook(request, reply, payload, done) {
    const route = request.routeOptions.url
    if (route?.startsWith('/hooks/')) {
      const forgeId = (request.params as { forgeId?: string }).forgeId ?? ''
      // Only configured forge ids become labels: a URL must not mint new series.
      hooks.inc({
        forge: forges.has(forgeId) ? forgeId : 'unknown',
        outcome: hookOutcome(reply.statusCode, payload),
      })
    }
    done(null, payload)
  })

  const tokens = new TokenAuthenticator(ctx.config, ctx.store.db)
  app.get('/metrics', async function scrape(request: FastifyRequest, reply: FastifyReply) {
    const caller = await tokens.fromRequest(request)
    if (caller === null || caller === 'invalid' || caller.scope !== 'operator') {
      return reply.code(caller === null || caller === 'invalid' ? 401 : 403).send({
        error: 'unauthorized',
        message: 'metrics need an operator token: "Authorization: Bearer <token>"',
      })
    }
    try {
      const text = await registry.metrics()
      return reply.type(registry.contentType).send(text)
    } catch (err) {
      ctx.log.warn(
        { err: errorMessage(err) },
        'a metrics scrape failed; is the database reachable?',
      )
      return reply
        .code(503)
        .send({ error: 'unavailable', message: `metrics could not be read: ${errorMessage(err)}` })
    }
  })
}

/** accepted, duplicate, ignored (from the answer), or what the status code says. */
function hookOutcome(status: number, payload: unknown): string {
  if (status < 300 && typeof payload === 'string') {
    const match = /"status":"(accepted|duplicate|ignored)"/.exec(payload)
    if (match?.[1]) return match[1]
  }
  if (status === 401) return 'unauthorized'
  if (status === 404) return 'unknown_forge'
  if (status === 413) return 'too_large'
  if (status >= 400 && status < 500) return 'malformed'
  if (status === 503) return 'unavailable'
  return status >= 500 ? 'error' : 'other'
}
