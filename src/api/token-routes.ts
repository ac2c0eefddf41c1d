import type { FastifyInstance } from 'fastify'
import { z } from 'zod'

import type { AppContext } from '../app/context.ts'
import { createToken, listTokens, requireScope, revokeToken, SCOPES } from './auth.ts'

const createBody = z
  .object({
    name: z.string().min(1).max(100),
    scope: z.enum(SCOPES),
    challenges: z.array(z.string().min(1)).optional(),
    participant: z.string().min(1).optional(),
  })
  .strict()

const idParams = z.object({ id: z.coerce.number().int().positive() })

/**
 * API tokens, for operators only. The token itself is in the answer of the create, once.
 *
 *   POST /api/tokens {"name":"alice-cli","scope":"participant","participant":"alice"}
 *     → 201 {"id":3,"name":"alice-cli","scope":"participant","participant":"alice","token":"pct_…",…}
 *   POST /api/tokens {"name":"iris-org","scope":"organizer","challenges":["iris"]}
 *   GET  /api/tokens                 → {"tokens":[…]} (no secrets)
 *   POST /api/tokens/3/revoke        → {"id":3,…,"revokedAt":"…"}
 */
export function tokenRoutes(app: FastifyInstance, ctx: AppContext): void {
  const operatorOnly = { preHandler: requireScope('operator') }

  app.post('/api/tokens', operatorOnly, async (request, reply) => {
    const body = createBody.parse(request.body)
    const created = await createToken(ctx.store.db, { ...body, at: ctx.clock.now() })
    ctx.log.info(
      { tokenId: created.id, scope: created.scope, by: request.caller?.name },
      'API token created',
    )
    return reply.code(201).send(created)
  })

  app.get('/api/tokens', operatorOnly, async () => ({ tokens: await listTokens(ctx.store.db) }))

  app.post('/api/tokens/:id/revoke', operatorOnly, async (request, reply) => {
    const { id } = idParams.parse(request.params)
    const token = await revokeToken(ctx.store.db, id, ctx.clock.now())
    if (!token) return reply.code(404).send({ error: 'not_found', message: `no API token ${id}` })
    ctx.log.info({ tokenId: id, by: request.caller?.name }, 'API token revoked')
    return token
  })
}
