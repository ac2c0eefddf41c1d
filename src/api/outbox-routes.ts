import type { FastifyInstance } from 'fastify'
import { z } from 'zod'

import type { AppContext } from '../app/context.ts'
import { listOutbox, outboxCounts, retryDeadMessage } from '../outbox/admin.ts'
import { requireScope } from './auth.ts'

const listQuery = z.object({
  state: z.enum(['pending', 'delivered', 'dead']).optional(),
  target: z.string().optional(),
  submission: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  before: z.coerce.number().int().positive().optional(),
})

const idParams = z.object({ id: z.coerce.number().int().positive() })

/**
 * The outbox, for operators: what is waiting, what was refused, and a way to send a refused
 * message again once its cause is fixed.
 *
 *   GET  /api/outbox?state=dead&target=platform&limit=20
 *     → {"counts":{"pending":3,"delivered":120,"dead":1},"messages":[{"id":41,"lastError":"…",…}]}
 *   POST /api/outbox/41/retry
 *     → 200 {"id":41,"state":"pending"}
 *     → 409 when a later message of the same submission and target went out meanwhile
 */
export function outboxRoutes(app: FastifyInstance, ctx: AppContext): void {
  const operatorOnly = { preHandler: requireScope('operator') }

  app.get('/api/outbox', operatorOnly, async (request) => {
    const query = listQuery.parse(request.query)
    const [counts, messages] = await Promise.all([
      outboxCounts(ctx.store),
      listOutbox(ctx.store, {
        limit: query.limit,
        ...(query.state ? { state: query.state } : {}),
        ...(query.target ? { target: query.target } : {}),
        ...(query.submission ? { submissionId: query.submission } : {}),
        ...(query.before ? { before: query.before } : {}),
      }),
    ])
    return { counts, messages }
  })

  app.post('/api/outbox/:id/retry', operatorOnly, async (request, reply) => {
    const { id } = idParams.parse(request.params)
    const result = await retryDeadMessage(ctx.store, id, ctx.clock)
    if (!result.ok) {
      const status = result.reason === 'not_found' ? 404 : 409
      return reply.code(status).send({ error: result.reason, message: result.message })
    }
    ctx.log.info({ outboxId: id, by: request.caller?.name }, 'dead outbox message retried')
    return { id, state: 'pending' }
  })
}
