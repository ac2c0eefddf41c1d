import { createHmac, timingSafeEqual } from 'node:crypto'

import { afterEach, describe, expect, it } from 'vitest'

import { ManualClock } from '../../src/domain/clock.ts'
import { OutboxDispatcher } from '../../src/outbox/dispatcher.ts'
import { syncOutboxRoutes } from '../../src/outbox/routes.ts'
import { reportingDb } from '../../src/outbox/tables.ts'
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
  type ReceivedRequest,
  type StandIn,
  type TestStore,
} from '../outbox/support/reporting.ts'

const SCORES_SECRET = 'scores-receiver-secret-0123456789'
const AUDIT_SECRET = 'audit-receiver-secret-9876543210'

/**
 * A receiver's check, written from the documented contract and nothing else: HMAC-SHA256
 * of the raw body with the shared secret, hex, after `sha256=`, compared in constant time;
 * the timestamp header must be recent.
 */
function receiverAccepts(request: ReceivedRequest, secret: string, nowSeconds: number): boolean {
  const header = request.headers['x-proctor-signature']
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false
  const expected = createHmac('sha256', secret).update(Buffer.from(request.body, 'utf8')).digest()
  const given = Buffer.from(header.slice('sha256='.length), 'hex')
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false
  const timestamp = Number(request.headers['x-proctor-timestamp'])
  return Math.abs(nowSeconds - timestamp) <= 300
}

describe('the webhook platform', () => {
  let ts: TestStore | undefined
  const standIns: StandIn[] = []

  afterEach(async () => {
    for (const s of standIns) await s.close()
    standIns.length = 0
    await ts?.close()
  })

  it('signs the raw body so an independent receiver can verify it, with delivery id and timestamp', async () => {
    ts = await openTestStore('webhook signature')
    const { store } = ts
    const clock = new ManualClock('2026-03-10T12:00:00Z')
    const scores = await startStandIn((_, response) => sendJson(response, 204, {}))
    const audit = await startStandIn((_, response) => sendJson(response, 200, {}))
    standIns.push(scores, audit)
    const context = { forges: [], publicUrl: 'https://proctor.example.test' }
    const platform = new WebhookPlatform(
      {
        endpoints: [
          { name: 'scores', url: `${scores.url}/proctor`, secret: SCORES_SECRET },
          { name: 'audit', url: `${audit.url}/in`, secret: AUDIT_SECRET },
        ],
        timeoutMs: 2_000,
      },
      { store, clock, context },
    )
    expect(platform.targets).toEqual(['webhook:scores', 'webhook:audit'])
    await syncOutboxRoutes(
      store.db,
      platform.targets.map((target) => ({ target, audience: 'platform' as const, forge: null })),
      clock.now(),
    )

    const alice = await addParticipant(store, { username: 'alice', team: 'flowers' })
    const id = await addSubmission(store, { participantId: alice, challengeId: 'iris', tag: 'v2' })
    const row = await store.db
      .selectFrom('submissions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow()
    expect(await platform.announce(row)).toEqual({
      ok: true,
      platformSubmissionId: `proctor:${id}`,
    })
    // Announcing again (an intake job retried) adds nothing.
    await platform.announce(row)
    await store.db
      .updateTable('submissions')
      .set({ platform_submission_id: `proctor:${id}` })
      .where('id', '=', id)
      .execute()
    await moveSubmission(store.db, id, {
      to: 'queued',
      message: 'queued',
      actor: 'test',
      at: clock.now(),
    })

    const dispatcher = new OutboxDispatcher(
      { store, clock, log: silentLog },
      platformTargets(platform, store, context),
    )
    while ((await dispatcher.deliverDue()) > 0) {
      // Until both endpoints have both messages.
    }

    const now = Math.floor(clock.now().getTime() / 1000)
    expect(scores.received).toHaveLength(2)
    expect(audit.received).toHaveLength(2)
    for (const request of scores.received) {
      expect(receiverAccepts(request, SCORES_SECRET, now)).toBe(true)
      expect(receiverAccepts(request, AUDIT_SECRET, now)).toBe(false)
      expect(
        receiverAccepts(
          { ...request, body: request.body.replace('"v2"', '"v3"') },
          SCORES_SECRET,
          now,
        ),
      ).toBe(false)
      expect(receiverAccepts(request, SCORES_SECRET, now + 3_600)).toBe(false)
    }
    for (const request of audit.received)
      expect(receiverAccepts(request, AUDIT_SECRET, now)).toBe(true)

    const [announced, queued] = scores.received
    const outbox = await reportingDb(store.db)
      .selectFrom('outbox')
      .select(['id', 'target', 'event'])
      .where('target', '=', 'webhook:scores')
      .orderBy('id')
      .execute()
    expect(announced?.headers['x-proctor-delivery']).toBe(String(outbox[0]?.id))
    expect(announced?.headers['x-proctor-event']).toBe('submission.announced')
    expect(queued?.headers['x-proctor-event']).toBe('submission.state')
    expect(queued?.headers['x-proctor-timestamp']).toBe(String(now))
    expect(queued?.json).toMatchObject({
      id: String(outbox[1]?.id),
      type: 'submission.state',
      timestamp: now,
      submission: {
        id,
        challengeId: 'iris',
        participant: 'alice',
        team: 'flowers',
        tag: 'v2',
        url: `https://proctor.example.test/submissions/${id}`,
      },
      change: { state: 'queued', previousState: 'received', message: 'queued' },
    })
  })
})
