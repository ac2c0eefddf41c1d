import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'

import {
  bearerAuth,
  canSeeSubmission,
  createToken,
  hashToken,
  visibleSubmissionsFilter,
} from '../../src/api/auth.ts'
import { buildServer } from '../../src/api/server.ts'
import { ManualClock } from '../../src/domain/clock.ts'
import {
  addParticipant,
  addSubmission,
  openTestStore,
  testContext,
  type TestStore,
} from '../outbox/support/reporting.ts'

const OPERATOR = 'configured-operator-token-0123'
const ORGANIZER = 'configured-organizer-token-0123'

describe('API tokens and scopes', () => {
  let ts: TestStore | undefined
  const apps: FastifyInstance[] = []

  afterEach(async () => {
    for (const app of apps) await app.close()
    apps.length = 0
    await ts?.close()
  })

  async function setUp(name: string) {
    ts = await openTestStore(name)
    const clock = new ManualClock('2026-03-10T12:00:00Z')
    const ctx = testContext(ts.store, clock, {
      api: {
        tokens: [
          { name: 'ops', token: OPERATOR, scope: 'operator' },
          { name: 'org', token: ORGANIZER, scope: 'organizer' },
        ],
      },
    })
    const server = await buildServer(ctx)
    apps.push(server)
    const call = async (method: 'GET' | 'POST', url: string, token?: string, payload?: unknown) => {
      const response = await server.inject({
        method,
        url,
        ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
        ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
      })
      return { status: response.statusCode, body: response.json<Record<string, unknown>>() }
    }
    return { store: ts.store, ctx, call }
  }

  it('creates a token that is shown once and stored only as its digest', async () => {
    const s = await setUp('token create')
    await addParticipant(s.store, { username: 'alice' })

    const created = await s.call('POST', '/api/tokens', OPERATOR, {
      name: 'alice-cli',
      scope: 'participant',
      participant: 'alice',
    })
    expect(created.status).toBe(201)
    const token = String(created.body.token)
    expect(token).toMatch(/^pct_[A-Za-z0-9_-]{43}$/)
    expect(created.body).toMatchObject({
      name: 'alice-cli',
      scope: 'participant',
      participant: 'alice',
      revokedAt: null,
    })

    const rows = await s.store.db.selectFrom('api_tokens').selectAll().execute()
    expect(rows).toHaveLength(1)
    expect(rows[0]?.token_hash).toBe(hashToken(token))
    expect(JSON.stringify(rows)).not.toContain(token)

    const listed = await s.call('GET', '/api/tokens', OPERATOR)
    expect(JSON.stringify(listed.body)).not.toContain(token)
    expect(listed.body.tokens).toEqual([
      expect.objectContaining({ id: created.body.id, scope: 'participant' }),
    ])

    // The new token authenticates (403, not 401): a participant may not read the outbox.
    const outbox = await s.call('GET', '/api/outbox', token)
    expect(outbox.status).toBe(403)
    expect(outbox.body.message).toMatch(/scope operator; yours is participant/)
  })

  it('lets only operators manage tokens', async () => {
    const s = await setUp('token admin')
    expect(
      (await s.call('POST', '/api/tokens', ORGANIZER, { name: 'x', scope: 'operator' })).status,
    ).toBe(403)
    expect(
      (await s.call('POST', '/api/tokens', undefined, { name: 'x', scope: 'operator' })).status,
    ).toBe(401)
    expect(
      (await s.call('GET', '/api/tokens', 'pct_not-a-real-token-at-all-0000000000000000000'))
        .status,
    ).toBe(401)
  })

  it('refuses a revoked token', async () => {
    const s = await setUp('token revoke')
    const created = await s.call('POST', '/api/tokens', OPERATOR, { name: 'ci', scope: 'operator' })
    const token = String(created.body.token)
    expect((await s.call('GET', '/api/tokens', token)).status).toBe(200)

    const revoked = await s.call('POST', `/api/tokens/${String(created.body.id)}/revoke`, OPERATOR)
    expect(revoked.status).toBe(200)
    expect(revoked.body.revokedAt).toBe('2026-03-10T12:00:00.000Z')
    const refused = await s.call('GET', '/api/tokens', token)
    expect(refused.status).toBe(401)
    expect(refused.body.message).toMatch(/not valid \(or was revoked\)/)
    expect((await s.call('POST', '/api/tokens/999/revoke', OPERATOR)).status).toBe(404)
  })

  it('checks what each scope must name', async () => {
    const s = await setUp('token validation')
    const organizer = await s.call('POST', '/api/tokens', OPERATOR, {
      name: 'o',
      scope: 'organizer',
    })
    expect(organizer.status).toBe(400)
    expect(organizer.body.message).toMatch(/names the challenges/)
    const ghost = await s.call('POST', '/api/tokens', OPERATOR, {
      name: 'p',
      scope: 'participant',
      participant: 'nobody',
    })
    expect(ghost.status).toBe(404)
    const anonymous = await s.call('POST', '/api/tokens', OPERATOR, {
      name: 'p',
      scope: 'participant',
    })
    expect(anonymous.status).toBe(400)
    const stray = await s.call('POST', '/api/tokens', OPERATOR, {
      name: 'p',
      scope: 'platform',
      challenges: ['iris'],
    })
    expect(stray.status).toBe(400)
  })

  it('shows a participant only their own submissions, and an organizer only their challenges', async () => {
    const s = await setUp('token visibility')
    const alice = await addParticipant(s.store, { username: 'alice' })
    const bob = await addParticipant(s.store, { username: 'bob' })
    const alices = await addSubmission(s.store, { participantId: alice, challengeId: 'iris' })
    const bobs = await addSubmission(s.store, { participantId: bob, challengeId: 'iris' })
    const wine = await addSubmission(s.store, { participantId: bob, challengeId: 'wine' })
    const tokens = {
      alice: (
        await createToken(s.store.db, { name: 'a', scope: 'participant', participant: 'alice' })
      ).token,
      irisOrganizer: (
        await createToken(s.store.db, { name: 'o', scope: 'organizer', challenges: ['iris'] })
      ).token,
      platform: (await createToken(s.store.db, { name: 'p', scope: 'platform' })).token,
    }

    // A route as the lead's GET /api/submissions would filter it.
    const app = Fastify()
    apps.push(app)
    app.addHook('onRequest', bearerAuth(s.ctx.config, s.store.db))
    app.get('/ids', async (request) => {
      const rows = await s.store.db
        .selectFrom('submissions')
        .select(['id', 'challenge_id', 'participant_id'])
        .where(visibleSubmissionsFilter(request.caller))
        .orderBy('id')
        .execute()
      return {
        ids: rows.map((r) => r.id),
        each: rows.every((r) => canSeeSubmission(request.caller, r)),
      }
    })
    const idsFor = async (token: string) =>
      (
        await app.inject({
          method: 'GET',
          url: '/ids',
          headers: { authorization: `Bearer ${token}` },
        })
      ).json<{ ids: number[]; each: boolean }>()

    expect(await idsFor(tokens.alice)).toEqual({ ids: [alices], each: true })
    expect(await idsFor(tokens.irisOrganizer)).toEqual({ ids: [alices, bobs], each: true })
    expect(await idsFor(tokens.platform)).toEqual({ ids: [alices, bobs, wine], each: true })
    expect(await idsFor(OPERATOR)).toEqual({ ids: [alices, bobs, wine], each: true })
    expect(await idsFor(ORGANIZER)).toEqual({ ids: [alices, bobs, wine], each: true })

    const caller = {
      name: 'a',
      scope: 'participant' as const,
      challenges: null,
      participantId: alice,
      tokenId: 1,
    }
    expect(canSeeSubmission(caller, { challenge_id: 'iris', participant_id: bob })).toBe(false)
  })
})
