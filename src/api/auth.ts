import { createHash, timingSafeEqual } from 'node:crypto'

import type { FastifyReply, FastifyRequest } from 'fastify'

import type { ProctorConfig } from '../config/proctor-config.ts'

export interface Caller {
  name: string
  scope: 'operator' | 'organizer' | 'platform' | 'participant'
}

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/**
 * Checks `Authorization: Bearer <token>` against the configured tokens. Tokens are
 * compared as SHA-256 digests in constant time, so neither their content nor their length
 * leaks through timing. Never logs the token.
 */
export function bearerAuth(config: ProctorConfig) {
  const tokens = config.api.tokens.map((t) => ({ name: t.name, scope: t.scope, hash: digest(t.token) }))
  return async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization ?? ''
    const match = /^Bearer\s+(.+)$/i.exec(header)
    if (!match?.[1]) {
      await reply.code(401).send({ error: 'unauthorized', message: 'send an API token as "Authorization: Bearer <token>"' })
      return
    }
    const presented = digest(match[1].trim())
    let found: (typeof tokens)[number] | undefined
    for (const token of tokens) if (timingSafeEqual(token.hash, presented)) found = token
    if (!found) {
      await reply.code(401).send({ error: 'unauthorized', message: 'this API token is not valid' })
      return
    }
    request.caller = { name: found.name, scope: found.scope }
  }
}
