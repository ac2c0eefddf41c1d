import Fastify from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'

import { bearerAuth } from '../../src/api/auth.ts'
import { outboxRoutes } from '../../src/api/outbox-routes.ts'
import { ManualClock } from '../../src/domain/clock.ts'
import { OutboxDispatcher } from '../../src/outbox/dispatcher.ts'
import { OutboxStore } from '../../src/outbox/outbox-store.ts'
import { syncOutboxRoutes } from '../../src/outbox/routes.ts'
import { platformTargets } from '../../src/platform/updates.ts'
import { WebhookPlatform } from '../../src/platform/webhook.ts'
import type { Store } from '../../src/store/database.ts'
import { moveSubmission } from '../../src/submissions/transitions.ts'
import {
  addSubmission,
  openTestStore,
  sendJson,
  silentLog,
  startStandIn,
  testContext,
  waitFor,
  type StandIn,
  type TestStore,
} from './support/reporting.ts'

const OPERATOR = 'operator-token-0123456789'
const SECRET = 'dispatcher-test-secret-0123456789'

interface Setup {
  store: Store
  clock: ManualClock
  platform: WebhookPlatform
  dispatcher(options?: { leaseMs?: number }): OutboxDispatcher
  /** An announced submission moved through `states`. */
  submission(
    states: ('queued' | 'building' | 'evaluating' | 'scored' | 'failed')[],
  ): Promise<number>
}

describe('the outbox dispatcher', () => {
  let ts: TestStore | undefined
  let standIn: StandIn | undefined
  const running: OutboxDispatcher[] = []

  afterEach(async () => {
    for (const d of running) await d.stop('immediate')
    running.length = 0
    await standIn?.close()
    await ts?.close()
  })

  async function setUp(name: string, answer: (state: string) => number): Promise<Setup> {
    ts = await openTestStore(name)
    const { store } = ts
    const clock = new ManualClock('2026-03-10T12:00:00Z')
    standIn = await startStandIn((request, response) => {
      const state = (request.json as { change: { state: string } }).change.state
      const status = answer(state)
      sendJson(
        response,
        status,
        status < 300 ? { ok: true } : { message: `no ${state} updates here` },
      )
    })
    const platform = new WebhookPlatform(
      { endpoints: [{ name: 'scores', url: standIn.url, secret: SECRET }], timeoutMs: 2_000 },
      { store, clock, context: { forges: [], publicUrl: undefined } },
    )
    await syncOutboxRoutes(
      store.db,
      [{ target: 'webhook:scores', audience: 'platform', forge: null }],
      clock.now(),
    )
    return {
      store,
      clock,
      platform,
      dispatcher: (options = {}) => {
        const d = new OutboxDispatcher(
          { store, clock, log: silentLog },
          platformTargets(platform, store, { forges: [], publicUrl: undefined }),
          { pollMs: 5, leaseMs: options.leaseMs ?? 60_000, backoff: { baseMs: 100, capMs: 100 } },
        )
        running.push(d)
        return d
      },
      async submission(states) {
        const id = await addSubmission(store, { platformSubmissionId: 'proctor:x' })
        for (const to of states) {
          await moveSubmission(store.db, id, {
            to,
            message: `now ${to}`,
            actor: 'test',
            at: clock.now(),
            ...(to === 'failed' ? { reasonCode: 'crashed' as const } : {}),
          })
        }
        return id
      },
    }
  }

  function stateOf(request: { json: unknown }): string {
    return (request.json as { change: { state: string } }).change.state
  }

  it('stops a refused message, still delivers the ones after it, and surfaces it to operators', async () => {
    const s = await setUp('refused message', (state) => (state === 'building' ? 422 : 200))
    const id = await s.submission(['queued', 'building', 'evaluating'])
    s.dispatcher().start()

    await waitFor('three deliveries', async () => {
      const rows = await s.store.db
        .selectFrom('outbox')
        .select('state')
        .where('state', '!=', 'pending')
        .execute()
      return rows.length === 3
    })
    expect(standIn?.received.map(stateOf)).toEqual(['queued', 'building', 'evaluating'])

    const ctx = testContext(s.store, s.clock, {
      api: { tokens: [{ name: 'ops', token: OPERATOR, scope: 'operator' }] },
    })
    const app = Fastify()
    app.addHook('onRequest', bearerAuth(ctx.config, s.store.db))
    outboxRoutes(app, ctx)
    const auth = { authorization: `Bearer ${OPERATOR}` }

    const dead = await app.inject({ method: 'GET', url: '/api/outbox?state=dead', headers: auth })
    expect(dead.statusCode).toBe(200)
    const body = dead.json<{
      counts: Record<string, number>
      messages: { id: number; submissionId: number; lastError: string }[]
    }>()
    expect(body.counts).toEqual({ pending: 0, delivered: 2, dead: 1 })
    expect(body.messages).toHaveLength(1)
    expect(body.messages[0]?.submissionId).toBe(id)
    expect(body.messages[0]?.lastError).toMatch(/HTTP 422: no building updates here/)

    // `evaluating` went out after it: sending `building` now would move the platform back.
    const retry = await app.inject({
      method: 'POST',
      url: `/api/outbox/${body.messages[0]?.id}/retry`,
      headers: auth,
    })
    expect(retry.statusCode).toBe(409)
    expect(retry.json<{ error: string }>().error).toBe('overtaken')
    await app.close()
  })

  it('delivers a dead message again when an operator retries it and nothing overtook it', async () => {
    let refuse = true
    const s = await setUp('retry dead', () => (refuse ? 400 : 200))
    await s.submission(['queued'])
    const d = s.dispatcher()
    expect(await d.deliverDue()).toBe(1)
    const [row] = await s.store.db.selectFrom('outbox').select(['id', 'state']).execute()
    expect(row?.state).toBe('dead')

    const ctx = testContext(s.store, s.clock, {
      api: { tokens: [{ name: 'ops', token: OPERATOR, scope: 'operator' }] },
    })
    const app = Fastify()
    app.addHook('onRequest', bearerAuth(ctx.config, s.store.db))
    outboxRoutes(app, ctx)
    const forbidden = await app.inject({ method: 'POST', url: `/api/outbox/${row?.id}/retry` })
    expect(forbidden.statusCode).toBe(401)

    refuse = false
    const retried = await app.inject({
      method: 'POST',
      url: `/api/outbox/${row?.id}/retry`,
      headers: { authorization: `Bearer ${OPERATOR}` },
    })
    expect(retried.json()).toEqual({ id: row?.id, state: 'pending' })
    expect(await d.deliverDue()).toBe(1)
    const after = await s.store.db.selectFrom('outbox').select('state').executeTakeFirstOrThrow()
    expect(after.state).toBe('delivered')
    expect(standIn?.received).toHaveLength(2)
    await app.close()
  })

  it('claims a message again once the lease of a dispatcher that died has expired', async () => {
    const s = await setUp('lease expiry', () => 200)
    await s.submission(['queued', 'building'])
    // A dispatcher claims the first message, then its process dies without a word.
    const crashed = await new OutboxStore(s.store, s.clock).claim({
      targets: ['webhook:scores'],
      limit: 10,
      leaseMs: 30_000,
    })
    expect(crashed).toHaveLength(1)

    const d = s.dispatcher()
    expect(await d.deliverDue()).toBe(0)
    s.clock.advance(30_001)
    expect(await d.deliverDue()).toBe(1)
    expect(await d.deliverDue()).toBe(1)
    expect(standIn?.received.map(stateOf)).toEqual(['queued', 'building'])
  })

  it('retries with jittered delays and counts the attempts', async () => {
    let calls = 0
    const s = await setUp('backoff', () => (++calls <= 3 ? 503 : 200))
    await s.submission(['queued'])
    const d = s.dispatcher()
    const waits: number[] = []
    for (let i = 0; i < 3; i++) {
      expect(await d.deliverDue()).toBe(1)
      const row = await s.store.db
        .selectFrom('outbox')
        .select(['next_attempt_at', 'attempts', 'last_error'])
        .executeTakeFirstOrThrow()
      expect(row.last_error).toMatch(/HTTP 503/)
      expect(row.attempts).toBe(i + 1)
      waits.push(new Date(row.next_attempt_at).getTime() - s.clock.now().getTime())
      expect(await d.deliverDue()).toBe(0)
      s.clock.advance(waits[i] ?? 0)
    }
    // Base 100 ms, cap 100 ms: each wait is between half and all of the cap.
    for (const wait of waits) {
      expect(wait).toBeGreaterThanOrEqual(50)
      expect(wait).toBeLessThanOrEqual(100)
    }
    expect(await d.deliverDue()).toBe(1)
    const done = await s.store.db
      .selectFrom('outbox')
      .select(['state', 'attempts'])
      .executeTakeFirstOrThrow()
    expect(done).toEqual({ state: 'delivered', attempts: 4 })
  })
})
