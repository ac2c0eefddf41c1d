import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

import type { FastifyReply, FastifyRequest } from 'fastify'
import { sql, type Expression, type ExpressionBuilder, type SqlBool } from 'kysely'

import type { ProctorConfig } from '../config/proctor-config.ts'
import { BadRequestError } from '../domain/errors.ts'
import type { Database } from '../store/schema.ts'
import type { Executor } from '../store/transaction.ts'

/**
 * API tokens and what they may see.
 *
 * - `operator`: everything, including tokens and the outbox.
 * - `organizer`: the challenges the token names (a token from configuration: every one);
 *   hidden scores of those challenges.
 * - `platform`: an external platform reading results: every submission, no administration.
 * - `participant`: the submissions of the participant the token names, nothing else.
 *
 * Tokens come from configuration (`api.tokens`) and from the `api_tokens` table (made by
 * `POST /api/tokens` or `proctor token create`). The table holds SHA-256 digests only; a
 * token is shown once, when it is made, and is never logged.
 */
export const SCOPES = ['operator', 'organizer', 'platform', 'participant'] as const
export type Scope = (typeof SCOPES)[number]

export interface Caller {
  readonly name: string
  readonly scope: Scope
  /** Organizer tokens: the challenges they organize. Null: every challenge. */
  readonly challenges: readonly string[] | null
  /** Participant tokens: whose submissions they see. */
  readonly participantId: number | null
  /** The api_tokens row; null for a token from configuration. */
  readonly tokenId: number | null
}

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller
  }
}

const TOKEN_PREFIX = 'pct_'

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

export interface CreateTokenOptions {
  readonly name: string
  readonly scope: Scope
  /** Organizer tokens: the challenge ids they organize (at least one). */
  readonly challenges?: readonly string[]
  /** Participant tokens: the participant's username. */
  readonly participant?: string
  readonly at?: Date
}

export interface TokenInfo {
  readonly id: number
  readonly name: string
  readonly scope: Scope
  readonly challenges: readonly string[] | null
  readonly participant: string | null
  readonly createdAt: string
  readonly revokedAt: string | null
}

/**
 * Makes a token and returns it in clear, once: only its digest is stored.
 *
 *   const { token } = await createToken(db, { name: 'alice-cli', scope: 'participant', participant: 'alice' })
 */
export async function createToken(
  db: Executor,
  options: CreateTokenOptions,
): Promise<TokenInfo & { token: string }> {
  const name = options.name.trim()
  if (name === '' || name.length > 100)
    throw new BadRequestError('a token name is 1 to 100 characters')
  if (!SCOPES.includes(options.scope))
    throw new BadRequestError(`scope must be one of ${SCOPES.join(', ')}`)
  const challenges = [...new Set(options.challenges ?? [])]
  if (options.scope === 'organizer' && challenges.length === 0) {
    throw new BadRequestError(
      'an organizer token names the challenges it organizes (challenges: [...])',
    )
  }
  if (options.scope !== 'organizer' && challenges.length > 0) {
    throw new BadRequestError('only organizer tokens name challenges')
  }
  if ((options.scope === 'participant') !== (options.participant !== undefined)) {
    throw new BadRequestError(
      'a participant token names its participant, and only a participant token does',
    )
  }

  let participantId: number | null = null
  if (options.participant !== undefined) {
    const participant = await db
      .selectFrom('participants')
      .select('id')
      .where('username', '=', options.participant)
      .executeTakeFirst()
    if (!participant) {
      throw new BadRequestError(
        `no participant ${options.participant}; load the participant directory first`,
        404,
        'not_found',
      )
    }
    participantId = Number(participant.id)
  }

  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`
  const createdAt = (options.at ?? new Date()).toISOString()
  const row = await db
    .insertInto('api_tokens')
    .values({
      name,
      token_hash: hashToken(token),
      scope: options.scope,
      challenges_json: options.scope === 'organizer' ? JSON.stringify(challenges) : null,
      participant_id: participantId,
      created_at: createdAt,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return {
    id: Number(row.id),
    name,
    scope: options.scope,
    challenges: options.scope === 'organizer' ? challenges : null,
    participant: options.participant ?? null,
    createdAt,
    revokedAt: null,
    token,
  }
}

/** Revokes a token. False when there is no such token; revoking twice keeps the first time. */
export async function revokeToken(db: Executor, id: number, at: Date): Promise<TokenInfo | null> {
  await db
    .updateTable('api_tokens')
    .set({ revoked_at: at.toISOString() })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .execute()
  return (await listTokens(db, id))[0] ?? null
}

export async function listTokens(db: Executor, id?: number): Promise<TokenInfo[]> {
  let query = db
    .selectFrom('api_tokens as t')
    .leftJoin('participants as p', 'p.id', 't.participant_id')
    .select([
      't.id',
      't.name',
      't.scope',
      't.challenges_json',
      'p.username',
      't.created_at',
      't.revoked_at',
    ])
    .orderBy('t.id')
  if (id !== undefined) query = query.where('t.id', '=', id)
  const rows = await query.execute()
  return rows.map((r) => ({
    id: Number(r.id),
    name: r.name,
    scope: r.scope as Scope,
    challenges: r.challenges_json ? (JSON.parse(r.challenges_json) as string[]) : null,
    participant: r.username,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
  }))
}

interface ConfiguredToken {
  readonly name: string
  readonly scope: Scope
  readonly digest: Buffer
}

/**
 * Finds who a presented token belongs to. Configuration tokens are compared as SHA-256
 * digests in constant time; stored tokens are found by their digest (an index lookup on a
 * hash of 256 random bits leaks nothing useful through timing). Revoked tokens fail.
 */
export class TokenAuthenticator {
  readonly #configured: ConfiguredToken[]
  readonly #db: Executor | undefined

  constructor(config: ProctorConfig, db?: Executor) {
    this.#configured = config.api.tokens.map((t) => ({
      name: t.name,
      scope: t.scope,
      digest: createHash('sha256').update(t.token).digest(),
    }))
    this.#db = db
  }

  async authenticate(token: string): Promise<Caller | null> {
    const presented = createHash('sha256').update(token).digest()
    let found: ConfiguredToken | undefined
    for (const t of this.#configured) if (timingSafeEqual(t.digest, presented)) found = t
    if (found) {
      return {
        name: found.name,
        scope: found.scope,
        challenges: null,
        participantId: null,
        tokenId: null,
      }
    }
    if (!this.#db || !token.startsWith(TOKEN_PREFIX)) return null

    const row = await this.#db
      .selectFrom('api_tokens')
      .select(['id', 'name', 'scope', 'challenges_json', 'participant_id'])
      .where('token_hash', '=', presented.toString('hex'))
      .where('revoked_at', 'is', null)
      .executeTakeFirst()
    if (!row || !SCOPES.includes(row.scope as Scope)) return null
    return {
      name: row.name,
      scope: row.scope as Scope,
      challenges: row.challenges_json ? (JSON.parse(row.challenges_json) as string[]) : [],
      participantId: row.participant_id === null ? null : Number(row.participant_id),
      tokenId: Number(row.id),
    }
  }

  /** The caller named by a request's `Authorization: Bearer` header; null without one. */
  async fromRequest(request: FastifyRequest): Promise<Caller | 'invalid' | null> {
    const header = request.headers.authorization
    if (header === undefined) return null
    const match = /^Bearer\s+(.+)$/i.exec(header)
    if (!match?.[1]) return 'invalid'
    return (await this.authenticate(match[1].trim())) ?? 'invalid'
  }
}

/**
 * The onRequest hook of authenticated routes: `Authorization: Bearer <token>` with a token
 * from configuration or, given the database, from the api_tokens table. Sets
 * `request.caller`. Never logs the token.
 */
export function bearerAuth(config: ProctorConfig, db?: Executor) {
  const tokens = new TokenAuthenticator(config, db)
  return async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const caller = await tokens.fromRequest(request)
    if (caller === null) {
      await reply.code(401).send({
        error: 'unauthorized',
        message: 'send an API token as "Authorization: Bearer <token>"',
      })
      return
    }
    if (caller === 'invalid') {
      await reply
        .code(401)
        .send({ error: 'unauthorized', message: 'this API token is not valid (or was revoked)' })
      return
    }
    request.caller = caller
  }
}

/** A preHandler refusing callers outside `scopes` with 403. */
export function requireScope(...scopes: Scope[]) {
  return async function checkScope(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const scope = request.caller?.scope
    if (scope && scopes.includes(scope)) return
    await reply.code(403).send({
      error: 'forbidden',
      message: `this route needs a token with scope ${scopes.join(' or ')}; yours is ${scope ?? 'missing'}`,
    })
  }
}

/** Whether the caller organizes (or runs) this challenge: sees its hidden scores. */
export function isOrganizerOf(caller: Caller | undefined, challengeId: string): boolean {
  if (!caller) return false
  if (caller.scope === 'operator') return true
  if (caller.scope !== 'organizer') return false
  return caller.challenges === null || caller.challenges.includes(challengeId)
}

/** Whether the caller may see this submission. */
export function canSeeSubmission(
  caller: Caller | undefined,
  submission: { challenge_id: string | null; participant_id: number | null },
): boolean {
  if (!caller) return false
  switch (caller.scope) {
    case 'operator':
    case 'platform':
      return true
    case 'organizer':
      return submission.challenge_id !== null && isOrganizerOf(caller, submission.challenge_id)
    case 'participant':
      return caller.participantId !== null && submission.participant_id === caller.participantId
  }
}

/**
 * A `where` for queries on `submissions` that keeps the rows the caller may see:
 *
 *   let select = db.selectFrom('submissions').selectAll()
 *   select = select.where(visibleSubmissionsFilter(request.caller))
 */
export function visibleSubmissionsFilter(caller: Caller | undefined) {
  return function visibleTo(eb: ExpressionBuilder<Database, 'submissions'>): Expression<SqlBool> {
    const none = sql<SqlBool>`1 = 0`
    if (!caller) return none
    switch (caller.scope) {
      case 'operator':
      case 'platform':
        return sql<SqlBool>`1 = 1`
      case 'organizer':
        if (caller.challenges === null) return sql<SqlBool>`1 = 1`
        return caller.challenges.length === 0
          ? none
          : eb('submissions.challenge_id', 'in', [...caller.challenges])
      case 'participant':
        return caller.participantId === null
          ? none
          : eb('submissions.participant_id', '=', caller.participantId)
    }
  }
}
