import type { FastifyInstance } from 'fastify'
import { z } from 'zod'

import type { AppContext } from '../app/context.ts'
import { createChallengeRerun, createRerun } from '../reruns/create-rerun.ts'

const body = z.object({ rules: z.enum(['recorded', 'current']).default('recorded') }).prefault({})
const batchBody = z
  .object({
    rules: z.enum(['recorded', 'current']).default('recorded'),
    states: z.array(z.enum(['scored', 'failed'])).default(['scored']),
  })
  .prefault({})

/**
 * Re-runs: a new evaluation of an archived image; the first result never changes.
 *
 *   POST /api/submissions/42/rerun        {"rules": "current"}   → 202 { evaluationId, number }
 *   POST /api/challenges/iris/rerun       {"states": ["scored"]} → 202 { reruns: [...] }
 */
export function rerunRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.post('/api/submissions/:id/rerun', async (request, reply) => {
    const { id } = z.object({ id: z.coerce.number().int().positive() }).parse(request.params)
    const options = body.parse(request.body ?? {})
    const created = await createRerun(ctx, id, {
      actor: request.caller?.name ?? 'api',
      rules: options.rules,
    })
    return reply.code(202).send(created)
  })

  app.post('/api/challenges/:id/rerun', async (request, reply) => {
    const { id } = z.object({ id: z.string() }).parse(request.params)
    const options = batchBody.parse(request.body ?? {})
    const reruns = await createChallengeRerun(ctx, id, {
      actor: request.caller?.name ?? 'api',
      ...options,
    })
    return reply.code(202).send({ reruns })
  })
}
