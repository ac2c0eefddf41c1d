import type { FastifyInstance } from 'fastify'
import { z } from 'zod'

import type { AppContext } from '../app/context.ts'
import {
  computeLeaderboard,
  currentRound,
  releaseScores,
  type LeaderboardView,
} from '../platform/leaderboard.ts'
import { isOrganizerOf, TokenAuthenticator, type Caller } from './auth.ts'

const params = z.object({ challenge: z.string().min(1) })
const boardQuery = z.object({
  round: z.string().min(1).optional(),
  /** Organizers may ask for the public view to see what participants see. */
  view: z.enum(['public', 'organizer']).optional(),
})
const releaseBody = z
  .object({ round: z.string().min(1).optional() })
  .strict()
  .optional()

/**
 * Leaderboards of the embedded platform (src/platform/leaderboard.ts). Registered outside
 * the authenticated routes: a challenge listed in `platform.leaderboards.public` (or `*`)
 * answers without a token; every other needs one. Organizers of the challenge, operators
 * and platform tokens see the organizer view (hidden scores, the live board after a freeze).
 *
 *   GET  /api/leaderboards/iris?round=round-1
 *     → {"challengeId":"iris","roundId":"round-1","policy":"best","entries":[{"rank":1,"name":"flowers","score":0.97,…}]}
 *   POST /api/leaderboards/iris/release {"round":"round-1"}   (organizer of iris, or operator)
 *     → {"challengeId":"iris","roundId":"round-1","released":true}
 */
export function leaderboardRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tokens = new TokenAuthenticator(ctx.config, ctx.store.db)
  const publicIds = ctx.config.platform.leaderboards.public
  const isPublic = (id: string) => publicIds.includes('*') || publicIds.includes(id)

  app.get('/api/leaderboards/:challenge', async (request, reply) => {
    const caller = await tokens.fromRequest(request)
    if (caller === 'invalid')
      return reply
        .code(401)
        .send({ error: 'unauthorized', message: 'this API token is not valid (or was revoked)' })
    const { challenge: id } = params.parse(request.params)
    const query = boardQuery.parse(request.query)
    // Anonymous callers learn nothing about boards that are not public, not even whether
    // the challenge exists.
    if (!caller && !isPublic(id)) {
      return reply.code(401).send({
        error: 'unauthorized',
        message: `the leaderboard of ${id} is not public; send an API token`,
      })
    }
    const challenge = ctx.challenges.get(id)
    if (!challenge)
      return reply.code(404).send({ error: 'not_found', message: `no challenge ${id}` })

    const view: LeaderboardView =
      seesOrganizerView(caller, id) && query.view !== 'public' ? 'organizer' : 'public'
    return computeLeaderboard(ctx.store.db, challenge.definition, {
      roundId: query.round,
      view,
      now: ctx.clock.now(),
    })
  })

  app.post('/api/leaderboards/:challenge/release', async (request, reply) => {
    const caller = await tokens.fromRequest(request)
    if (caller === null || caller === 'invalid') {
      return reply
        .code(401)
        .send({ error: 'unauthorized', message: 'send an organizer or operator API token' })
    }
    const { challenge: id } = params.parse(request.params)
    const challenge = ctx.challenges.get(id)
    if (!challenge)
      return reply.code(404).send({ error: 'not_found', message: `no challenge ${id}` })
    if (!isOrganizerOf(caller, id)) {
      return reply.code(403).send({
        error: 'forbidden',
        message: `only organizers of ${id} and operators release its scores`,
      })
    }
    const body = releaseBody.parse(request.body ?? undefined)
    const roundId = body?.round ?? currentRound(challenge.definition, ctx.clock.now())
    await releaseScores(ctx.store.db, id, roundId, caller.name, ctx.clock.now())
    ctx.log.info({ challengeId: id, roundId, by: caller.name }, 'hidden scores released')
    return { challengeId: id, roundId, released: true }
  })
}

function seesOrganizerView(caller: Caller | null, challengeId: string): boolean {
  if (!caller) return false
  return caller.scope === 'platform' || isOrganizerOf(caller, challengeId)
}
