import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ZodError } from 'zod'

import { archiveRoutes } from '../../src/api/archive-routes.ts'
import { bearerAuth, createToken } from '../../src/api/auth.ts'
import type { AppContext } from '../../src/app/context.ts'
import { RegistryService } from '../../src/archive/registry-service.ts'
import { BadRequestError } from '../../src/domain/errors.ts'
import { TEST_ENV } from '../support/env.ts'
import { assertServicesUp } from '../support/services.ts'
import {
  archiveContext,
  docker,
  insertArchived,
  pushRandomImage,
  removeImages,
  silentLog,
} from './support/archive-context.ts'
import { startTestRegistry, type TestRegistry } from './support/test-registry.ts'

const OPERATOR = 'operator-token-0123456789'
const names = new Set<string>()
let registry: TestRegistry
let ctx: AppContext
let close: () => Promise<void>
let app: FastifyInstance
let organizerOfBeta = ''
let alphaSubmission = 0
let betaSubmission = 0

/** The archive's routes behind the real bearer check, tested in-process. */
async function call(
  method: 'GET' | 'POST',
  url: string,
  token: string,
  payload?: Record<string, unknown>,
) {
  const response = await app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}` },
    payload,
  })
  return { status: response.statusCode, body: response.json<Record<string, unknown>>() }
}

beforeAll(async () => {
  await assertServicesUp(['docker', 'images'])
  registry = await startTestRegistry()
  const context = await archiveContext({
    registry: registry.address,
    challenges: [{ id: 'alpha', acceptSubmissions: false }, { id: 'beta' }],
    config: { api: { tokens: [{ name: 'ops', token: OPERATOR, scope: 'operator' }] } },
  })
  ctx = context.ctx
  close = () => context.close()
  organizerOfBeta = (
    await createToken(ctx.store.db, { name: 'beta-org', scope: 'organizer', challenges: ['beta'] })
  ).token

  const image = await pushRandomImage({
    registry: registry.address,
    repository: 'routes/alpha/alice',
    tag: 'a',
    base: TEST_ENV.busyboxImage,
    bytes: 4096,
    names,
  })
  const other = await pushRandomImage({
    registry: registry.address,
    repository: 'routes/beta/bob',
    tag: 'b',
    base: TEST_ENV.busyboxImage,
    bytes: 4096,
    names,
  })
  alphaSubmission = await insertArchived(ctx, {
    challengeId: 'alpha',
    participant: 'alice',
    image,
    score: 0.4,
    createdAt: '2026-01-01T00:00:00Z',
  })
  await insertArchived(ctx, {
    challengeId: 'alpha',
    participant: 'alice',
    image: null,
    score: 0.9,
    createdAt: '2026-01-02T00:00:00Z',
  })
  betaSubmission = await insertArchived(ctx, {
    challengeId: 'beta',
    participant: 'bob',
    image: other,
    score: 0.5,
    createdAt: '2026-01-01T00:00:00Z',
  })

  app = Fastify()
  app.setErrorHandler((err, _request, reply) => {
    if (err instanceof BadRequestError)
      return reply.code(err.status).send({ error: err.code, message: err.message })
    if (err instanceof ZodError)
      return reply.code(400).send({ error: 'bad_request', message: err.message })
    return reply.code(500).send({ error: 'internal', message: String(err) })
  })
  await app.register((api) => {
    api.addHook('onRequest', bearerAuth(ctx.config, ctx.store.db))
    archiveRoutes(api, ctx, { docker, registry: new RegistryService(registry.admin, silentLog) })
    return Promise.resolve()
  })
})

afterAll(async () => {
  await app?.close()
  await close?.()
  await removeImages(names)
  await registry?.stop()
})

describe('archive routes', () => {
  it('lets an organizer see and act on their own challenge only', async () => {
    const own = await call('GET', '/api/storage?challenge=beta', organizerOfBeta)
    const other = await call('GET', '/api/storage?challenge=alpha', organizerOfBeta)
    const unnamed = await call('GET', '/api/storage', organizerOfBeta)
    const pinOther = await call('POST', `/api/submissions/${alphaSubmission}/pin`, organizerOfBeta)
    const gc = await call('POST', '/api/registry/gc', organizerOfBeta, {})

    expect(own.status).toBe(200)
    expect(own.body.challenges).toMatchObject([{ challengeId: 'beta', images: 1 }])
    expect([other.status, unnamed.status, pinOther.status]).toEqual([403, 403, 403])
    expect(gc).toMatchObject({ status: 403, body: { error: 'forbidden' } })
  })

  it('pins and unpins, recorded on the timeline, and retention keeps what is pinned', async () => {
    const pinned = await call('POST', `/api/submissions/${alphaSubmission}/pin`, OPERATOR)
    const plan = await call('POST', '/api/challenges/alpha/retention', OPERATOR, {
      policy: { keepBestPerParticipant: 0, keepLastPerParticipant: 0, graceDays: 0 },
    })
    await call('POST', `/api/submissions/${alphaSubmission}/unpin`, OPERATOR)
    const after = await call('POST', '/api/challenges/alpha/retention', OPERATOR, {
      policy: { keepBestPerParticipant: 0, keepLastPerParticipant: 0, graceDays: 0 },
    })

    expect(pinned).toMatchObject({ status: 200, body: { pinned: true, changed: true } })
    expect(plan.body).toMatchObject({ dryRun: true, plan: { expire: [] } })
    expect(after.body).toMatchObject({
      dryRun: true,
      plan: { expire: [{ submissionIds: [alphaSubmission] }] },
    })
    const notes = await ctx.store.db
      .selectFrom('submission_events')
      .select('message')
      .where('submission_id', '=', alphaSubmission)
      .orderBy('id')
      .execute()
    expect(notes.map((n) => n.message)).toEqual([
      'image pinned by ops: retention keeps it',
      'image unpinned by ops: retention applies again',
    ])
  })

  it('applies retention, then refuses to pin what expired and reports what deleting frees', async () => {
    const freed = await call('POST', '/api/storage/freed', OPERATOR, {
      submissions: [alphaSubmission],
    })
    const applied = await call('POST', '/api/challenges/alpha/retention', OPERATOR, {
      apply: true,
      policy: { keepBestPerParticipant: 0, keepLastPerParticipant: 0, graceDays: 0 },
    })
    const pin = await call('POST', `/api/submissions/${alphaSubmission}/pin`, OPERATOR)

    expect(freed.status).toBe(200)
    expect(applied).toMatchObject({
      status: 200,
      body: { dryRun: false, failed: [], plan: { bytesFreed: freed.body.bytes } },
    })
    expect(pin).toMatchObject({ status: 409, body: { error: 'expired' } })
  })

  it('runs garbage collection for an operator and shows it in the maintenance status', async () => {
    const gc = await call('POST', '/api/registry/gc', OPERATOR, { dryRun: true })
    const status = await call('GET', '/api/registry/maintenance', OPERATOR)

    expect(gc).toMatchObject({ status: 200, body: { outcome: 'done', dryRun: true } })
    expect(gc.body.blobsEligible).toBeGreaterThan(0)
    expect(status.body).toMatchObject({
      pushes: { paused: false },
      gcRuns: [{ outcome: 'done', dry_run: 1 }],
    })
  })

  it('answers 404 for an unknown submission and 400 for a bad body', async () => {
    expect((await call('POST', '/api/submissions/999999/verify', OPERATOR)).status).toBe(404)
    expect((await call('POST', '/api/storage/freed', OPERATOR, { submissions: [] })).status).toBe(
      400,
    )
    expect(
      (await call('POST', `/api/submissions/${betaSubmission}/pin`, organizerOfBeta)).status,
    ).toBe(200)
  })
})
