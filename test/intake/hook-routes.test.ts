import { Writable } from 'node:stream'

import Fastify from 'fastify'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'

import { hookRoutes } from '../../src/intake/hook-routes.ts'
import {
  buildHookApp,
  countRows,
  createTestContext,
  GITHUB_SECRET,
  GITLAB_SECRETS,
  type TestContext,
} from './support/context.ts'
import { deliver, fixtureBytes, fixtureJson, hmacHex, postHook } from './support/deliveries.ts'

interface SequenceDelivery {
  n: number
  body: string
  headers: Record<string, string>
}

describe('hook route', () => {
  let t: TestContext | undefined

  afterEach(async () => {
    await t?.close()
    t = undefined
  })

  it('answers the duplicate-deliveries sequence 202, 200, 200 with one event and one job', async () => {
    t = await createTestContext()
    const app = await buildHookApp(t.ctx)
    const sequence = fixtureJson('sequences/duplicate-deliveries.json') as unknown as {
      deliveries: SequenceDelivery[]
    }

    const answers = []
    for (const delivery of sequence.deliveries) {
      const body = fixtureBytes(`gitlab/${delivery.body}`)
      const headers = Object.fromEntries(
        Object.entries(delivery.headers).map(([k, v]) => [k.toLowerCase(), v]),
      )
      answers.push(await postHook(app, '/hooks/gitlab', body, headers))
    }

    expect(answers.map((a) => a.status)).toEqual([202, 200, 200])
    const first = answers[0]?.body.eventId
    expect(answers.slice(1).map((a) => a.body)).toEqual([
      expect.objectContaining({ status: 'duplicate', eventId: first }),
      expect.objectContaining({ status: 'duplicate', eventId: first }),
    ])
    const event = await t.store.db.selectFrom('hook_events').selectAll().executeTakeFirstOrThrow()
    expect(event.duplicate_count).toBe(2)
    expect(await countRows(t.store)).toMatchObject({ events: 1, jobs: 1 })
    await app.close()
  })

  it('ends two identical deliveries racing each other as one 202 and one 200', async () => {
    t = await createTestContext()
    const app = await buildHookApp(t.ctx)
    for (let round = 0; round < 20; round++) {
      const body = fixtureJson('gitlab/tag-push-v1.json')
      body.ref = `refs/tags/race-${round}`
      const answers = await Promise.all([
        deliver(app, 'gitlab', body),
        deliver(app, 'gitlab', body),
      ])
      expect(answers.map((a) => a.status).sort()).toEqual([200, 202])
    }
    expect(await countRows(t.store)).toMatchObject({ events: 20, jobs: 20 })
    await app.close()
  })

  it('stores the commit to build (checkout_sha), not after, for an annotated tag', async () => {
    t = await createTestContext()
    const app = await buildHookApp(t.ctx)
    const answer = await deliver(
      app,
      'gitlab',
      fixtureBytes('gitlab/gitlab-system-hook-tag-push.json'),
    )

    expect(answer.status).toBe(202)
    const event = await t.store.db.selectFrom('hook_events').selectAll().executeTakeFirstOrThrow()
    expect(event).toMatchObject({
      status: 'pending',
      after_sha: '6f1c2e9a4b7d8c0e3a5f9b2d4c6e8a0b1c3d5e7f',
      checkout_sha: 'a94e3b1f0c2d4e6f8a0b2c4d6e8f0a1b3c5d7e9f',
      tag: 'submit-hw3',
      project_path: 'ml-course/alice-submission',
      delivery_key: 'gitlab|4821|refs/tags/submit-hw3|6f1c2e9a4b7d8c0e3a5f9b2d4c6e8a0b1c3d5e7f',
    })
    await app.close()
  })

  it("reads the legacy shape's project path from the repository's web address", async () => {
    t = await createTestContext()
    const app = await buildHookApp(t.ctx)
    await deliver(app, 'gitlab', fixtureBytes('gitlab/legacy-repository-only.json'))

    const event = await t.store.db.selectFrom('hook_events').selectAll().executeTakeFirstOrThrow()
    expect(event).toMatchObject({ project_id: '1001', project_path: 'alice/flower-classification' })
    expect(event.pusher_username).toBeNull()
  })

  it('answers 413 over the body limit and stores nothing', async () => {
    t = await createTestContext({ bodyLimitBytes: 2048 })
    const app = await buildHookApp(t.ctx)
    const body = fixtureJson('gitlab/tag-push-v1.json')
    body.message = 'x'.repeat(4096)

    const answer = await deliver(app, 'gitlab', body)

    expect(answer.status).toBe(413)
    expect(await countRows(t.store)).toMatchObject({ events: 0, jobs: 0 })
    await app.close()
  })

  it('answers 503 and stores nothing when the database is down', async () => {
    t = await createTestContext()
    const app = await buildHookApp(t.ctx)
    await t.store.close()

    const answer = await deliver(app, 'gitlab', fixtureBytes('gitlab/tag-push-v1.json'))

    expect(answer.status).toBe(503)
    expect(answer.body).toMatchObject({ error: 'unavailable' })
    await app.close()
  })

  it('takes a delivery without a content type', async () => {
    t = await createTestContext()
    const app = await buildHookApp(t.ctx)
    const res = await app.inject({
      method: 'POST',
      url: '/hooks/gitlab',
      payload: fixtureBytes('gitlab/tag-push-v1.json'),
      headers: { 'x-gitlab-token': GITLAB_SECRETS[0] ?? '', 'content-type': '' },
    })
    expect(res.statusCode).toBe(202)
    await app.close()
  })

  it('takes a form-encoded GitHub delivery, verifying the signature over the form bytes', async () => {
    t = await createTestContext()
    const app = await buildHookApp(t.ctx)
    const form = `payload=${encodeURIComponent(fixtureBytes('github/github-push-tag.json').toString('utf8'))}`
    const answer = await postHook(app, '/hooks/github', form, {
      'content-type': 'application/x-www-form-urlencoded',
      'x-hub-signature-256': `sha256=${hmacHex(GITHUB_SECRET, form)}`,
    })
    expect(answer.status).toBe(202)
    await app.close()
  })

  it('writes no secret and no body to the log', async () => {
    t = await createTestContext()
    const lines: string[] = []
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'))
        done()
      },
    })
    const app = Fastify({ loggerInstance: pino({ level: 'trace' }, sink) })
    await app.register(hookRoutes, { ctx: t.ctx })
    const body = fixtureBytes('gitlab/tag-push-v1.json')

    await postHook(app, '/hooks/gitlab', body, { 'x-gitlab-token': GITLAB_SECRETS[0] ?? '' })
    await postHook(app, '/hooks/gitlab', body, { 'x-gitlab-token': 'guess-secret' })
    await postHook(app, '/hooks/github', fixtureBytes('github/github-push-tag.json'), {
      'x-hub-signature-256': `sha256=${'1'.repeat(64)}`,
    })

    const log = lines.join('')
    expect(log).toContain('tag push accepted')
    expect(log).toContain('hook refused')
    for (const secret of [...GITLAB_SECRETS, 'guess-secret', GITHUB_SECRET, '1'.repeat(64)]) {
      expect(log).not.toContain(secret)
    }
    expect(log).not.toContain('path_with_namespace')
    await app.close()
  })

  it('answers 404 to other methods and to /hooks without a forge', async () => {
    t = await createTestContext()
    const app = await buildHookApp(t.ctx)
    expect((await app.inject({ method: 'GET', url: '/hooks/gitlab' })).statusCode).toBe(404)
    expect((await app.inject({ method: 'POST', url: '/hooks' })).statusCode).toBe(404)
    await app.close()
  })
})
