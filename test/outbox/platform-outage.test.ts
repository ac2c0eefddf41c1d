import { createHmac, timingSafeEqual } from 'node:crypto'

import { afterEach, describe, expect, it } from 'vitest'

import { ManualClock } from '../../src/domain/clock.ts'
import type { SubmissionState } from '../../src/domain/states.ts'
import { OutboxDispatcher } from '../../src/outbox/dispatcher.ts'
import { syncOutboxRoutes } from '../../src/outbox/routes.ts'
import { reportingDb } from '../../src/outbox/tables.ts'
import type { OutboxMessage } from '../../src/outbox/target.ts'
import { platformTargets } from '../../src/platform/updates.ts'
import { WebhookPlatform } from '../../src/platform/webhook.ts'
import { moveSubmission } from '../../src/submissions/transitions.ts'
import {
  addParticipant,
  addSubmission,
  openTestStore,
  sendJson,
  silentLog,
  startStandIn,
  waitFor,
  type StandIn,
  type TestStore,
} from './support/reporting.ts'

const SECRET = 'stand-in-webhook-secret-0123456789'
const SUBMISSIONS = 4
const MOVES: { to: SubmissionState; message: string }[] = [
  { to: 'queued', message: 'queued; 4 of 5 left' },
  { to: 'building', message: 'building the image' },
  { to: 'evaluating', message: 'running the phases' },
  { to: 'scored', message: 'scored 0.8700' },
]
const EXPECTED_STATES = ['received', ...MOVES.map((m) => m.to)]

/**
 * The platform of fixtures/sequences/platform-outage.json: every message is answered 503,
 * 503, then a hang (the platform applies it but the answer never comes: the client times
 * out), then 200. A key seen before is answered 200 and dropped, as an idempotent receiver
 * does. `applied` is what the platform acted on, in order.
 */
function outagePlatform() {
  const attempts = new Map<string, number>()
  const applied: { key: string; submissionId: number; state: string; requestIndex: number }[] = []
  const duplicates: string[] = []
  const badSignatures: string[] = []
  let requests = 0
  const firstRequest = new Map<string, number>()

  const standIn = startStandIn((request, response) => {
    const index = requests++
    const key = String(request.headers['x-proctor-delivery'])
    if (!firstRequest.has(key)) firstRequest.set(key, index)
    if (!verify(request.body, String(request.headers['x-proctor-signature']))) {
      badSignatures.push(key)
      sendJson(response, 401, { message: 'bad signature' })
      return
    }
    const attempt = (attempts.get(key) ?? 0) + 1
    attempts.set(key, attempt)
    if (attempt <= 2) {
      sendJson(response, 503, { message: 'down for maintenance' })
      return
    }
    const body = request.json as { submission: { id: number }; change: { state: string } }
    const seen = applied.some((a) => a.key === key)
    if (seen) duplicates.push(key)
    else
      applied.push({
        key,
        submissionId: body.submission.id,
        state: body.change.state,
        requestIndex: index,
      })
    // The third attempt is applied but never answered: the client gives up on it.
    if (attempt === 3) return
    sendJson(response, 200, { ok: true })
  })
  return { standIn, applied, duplicates, badSignatures, firstRequest, attempts }
}

function verify(body: string, header: string): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`)
  const given = Buffer.from(header)
  return expected.length === given.length && timingSafeEqual(expected, given)
}

describe('delivering through a platform outage', () => {
  let ts: TestStore | undefined
  let standIn: StandIn | undefined
  const dispatchers: OutboxDispatcher[] = []

  afterEach(async () => {
    for (const d of dispatchers) await d.stop('immediate')
    await standIn?.close()
    await ts?.close()
  })

  it('delivers every update once per key, in order per submission, across two dispatchers and a restart', async () => {
    ts = await openTestStore('platform outage')
    const { store } = ts
    const clock = new ManualClock('2026-03-10T12:00:00Z')
    const platformStandIn = outagePlatform()
    standIn = await platformStandIn.standIn

    const platform = new WebhookPlatform(
      {
        endpoints: [{ name: 'scores', url: `${standIn.url}/hook`, secret: SECRET }],
        timeoutMs: 200,
      },
      { store, clock, context: { forges: [], publicUrl: 'https://proctor.example.test' } },
    )
    await syncOutboxRoutes(
      store.db,
      [{ target: 'webhook:scores', audience: 'platform', forge: null }],
      clock.now(),
    )
    const triedBy = new Map<string, number>()
    // The real webhook targets, counting which dispatcher made each attempt.
    const targets = (dispatcherId: string) =>
      platformTargets(platform, store, { forges: [], publicUrl: undefined }).map((target) => ({
        id: target.id,
        deliver: (message: OutboxMessage, signal: AbortSignal) => {
          triedBy.set(dispatcherId, (triedBy.get(dispatcherId) ?? 0) + 1)
          return target.deliver(message, signal)
        },
      }))
    const makeDispatcher = (id: string) => {
      const d = new OutboxDispatcher({ store, clock, log: silentLog }, targets(id), {
        id,
        pollMs: 5,
        leaseMs: 10 * 60_000,
        concurrency: 3,
        backoff: { baseMs: 1_000, capMs: 4_000 },
      })
      dispatchers.push(d)
      return d
    }

    // Announce every submission and record half their moves while nothing dispatches: the
    // platform is down and proctor keeps working.
    const alice = await addParticipant(store, { username: 'alice' })
    const ids: number[] = []
    for (let i = 0; i < SUBMISSIONS; i++) {
      const id = await addSubmission(store, { participantId: alice })
      ids.push(id)
      const submission = await store.db
        .selectFrom('submissions')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
      const answer = await platform.announce(submission)
      expect(answer).toEqual({ ok: true, platformSubmissionId: `proctor:${id}` })
      await store.db
        .updateTable('submissions')
        .set({ platform_submission_id: `proctor:${id}` })
        .where('id', '=', id)
        .execute()
    }
    const move = async (id: number, step: number) => {
      const m = MOVES[step]
      if (!m) throw new Error(`no move ${step}`)
      await moveSubmission(store.db, id, {
        to: m.to,
        message: m.message,
        actor: 'worker:test',
        at: clock.now(),
        ...(m.to === 'scored' ? { set: { score: 0.87 } } : {}),
      })
    }
    for (const id of ids) for (const step of [0, 1]) await move(id, step)

    const first = makeDispatcher('a')
    const second = makeDispatcher('b')
    first.start()
    second.start()
    const tick = () => clock.advance(500)
    const total = SUBMISSIONS * EXPECTED_STATES.length

    // The rest of the moves happen while deliveries are under way.
    for (const id of ids) for (const step of [2, 3]) await move(id, step)
    await waitFor(
      'a third of the messages to be applied',
      () => platformStandIn.applied.length >= total / 3,
      { tick },
    )

    // "Restart": one dispatcher stops mid-delivery (requests in flight are abandoned) and a
    // new one takes its place; the other keeps running throughout.
    await first.stop('immediate')
    makeDispatcher('a-restarted').start()

    await waitFor('every message to be applied', () => platformStandIn.applied.length >= total, {
      tick,
    })
    await waitFor(
      'every outbox row to be delivered',
      async () => {
        const pending = await store.db
          .selectFrom('outbox')
          .select('id')
          .where('state', '!=', 'delivered')
          .execute()
        return pending.length === 0
      },
      { tick },
    )

    const { applied, duplicates, badSignatures, firstRequest, attempts } = platformStandIn
    expect([...triedBy.keys()].sort()).toEqual(['a', 'a-restarted', 'b'])
    expect(badSignatures).toEqual([])
    expect(applied).toHaveLength(total)
    expect(new Set(applied.map((a) => a.key)).size).toBe(total)
    for (const id of ids) {
      const mine = applied.filter((a) => a.submissionId === id)
      expect(mine.map((a) => a.state)).toEqual(EXPECTED_STATES)
      const keys = mine.map((a) => Number(a.key))
      expect(keys).toEqual([...keys].sort((x, y) => x - y))
      // Strict order: no attempt at a message reached the platform before the previous
      // message of the same submission had been applied.
      for (let k = 1; k < mine.length; k++) {
        const previous = mine[k - 1]
        const current = mine[k]
        if (!previous || !current) throw new Error('missing message')
        expect(firstRequest.get(current.key)).toBeGreaterThan(previous.requestIndex)
      }
    }
    // Every message needed four tries; the hung third one was applied, so the fourth was a
    // duplicate the platform dropped by its key.
    expect(duplicates.length).toBeGreaterThanOrEqual(total)
    expect([...attempts.values()].every((n) => n >= 4)).toBe(true)

    const scored = await reportingDb(store.db)
      .selectFrom('outbox')
      .select(['payload_json'])
      .where('event', '=', 'state')
      .execute()
    const scores = scored.map(
      (r) => JSON.parse(r.payload_json) as { state: string; score: number | null },
    )
    expect(scores.filter((p) => p.state === 'scored').map((p) => p.score)).toEqual(
      Array(SUBMISSIONS).fill(0.87),
    )
  })
})
