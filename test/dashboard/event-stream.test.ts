import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createToken } from '../../src/api/auth.ts'
import { noteSubmission } from '../../src/submissions/transitions.ts'
import { API_TOKEN, startProctor, type Harness } from '../support/proctor-harness.ts'
import { insertLog, insertSubmission, move, participantId } from './support/fixtures.ts'
import { SseReader } from './support/sse-reader.ts'

let proctor: Harness
const operator = { authorization: `Bearer ${API_TOKEN}` }
const open: SseReader[] = []

async function stream(
  path: string,
  headers: Record<string, string> = operator,
): Promise<SseReader> {
  const reader = await SseReader.open(`${proctor.address}${path}`, headers)
  open.push(reader)
  return reader
}

const isReady = (m: { event: string }) => m.event === 'ready'

beforeAll(async () => {
  // No worker: the tests move submissions themselves, through the real transitions.
  proctor = await startProctor({}, { workerSlots: 0 })
})

afterAll(async () => {
  for (const reader of open) reader.close()
  await proctor?.close()
})

describe('GET /api/submissions/:id/events', () => {
  it('replays the timeline, marks the end of the backlog, then sends each change as it commits', async () => {
    const db = proctor.app.ctx.store.db
    const id = await insertSubmission(db)
    await move(db, id, 'queued')
    const reader = await stream(`/api/submissions/${id}/events`)
    expect(reader.status).toBe(200)
    expect(reader.headers['content-type']).toMatch(/^text\/event-stream/)
    const [ready] = await reader.waitFor(isReady)
    expect(JSON.parse(ready?.data ?? '{}')).toMatchObject({ submissionId: id, state: 'queued' })
    expect(reader.events.map((e) => e.data.state)).toEqual(['received', 'queued'])

    const started = Date.now()
    await move(db, id, 'building')
    await noteSubmission(db, id, {
      message: 'building the image',
      stage: 'build',
      actor: 'test',
      at: new Date(),
    })
    await move(db, id, 'evaluating')
    await reader.waitFor((m) => m.event === 'state' && m.data.includes('"evaluating"'))
    // One poll interval (250 ms) plus a query; generous for a loaded machine.
    expect(Date.now() - started).toBeLessThan(2_000)

    const events = reader.events
    expect(events.map((e) => e.event)).toEqual(['state', 'state', 'state', 'stage', 'state'])
    expect(events.map((e) => Number(e.id))).toEqual(
      [...events.map((e) => Number(e.id))].sort((a, b) => a - b),
    )
    expect(events.at(-1)?.data).toMatchObject({
      type: 'timeline',
      submissionId: id,
      challengeId: 'iris',
      kind: 'state',
      actor: 'test',
    })
  })

  it('resumes after Last-Event-ID: what was missed comes once, nothing is repeated', async () => {
    const db = proctor.app.ctx.store.db
    const id = await insertSubmission(db)
    await move(db, id, 'queued')
    const first = await stream(`/api/submissions/${id}/events`)
    await first.waitFor(isReady)
    const seen = first.events
    first.close()

    await move(db, id, 'building')
    await move(db, id, 'failed', { reasonCode: 'build_failed', message: 'the build failed' })

    const resumed = await stream(`/api/submissions/${id}/events`, {
      ...operator,
      'last-event-id': String(seen.at(-1)?.id),
    })
    await resumed.waitFor(isReady)
    expect(resumed.events.map((e) => e.data.state)).toEqual(['building', 'failed'])
    expect(resumed.events[0]?.data.id).toBeGreaterThan(Number(seen.at(-1)?.id))
    expect(resumed.events[1]?.data).toMatchObject({
      reasonCode: 'build_failed',
      message: 'the build failed',
    })

    // The same cursor in the query string, for clients that cannot set headers.
    const byQuery = await stream(`/api/submissions/${id}/events?after=${seen.at(-1)?.id}`)
    await byQuery.waitFor(isReady)
    expect(byQuery.events.map((e) => e.data.state)).toEqual(['building', 'failed'])
  })

  it('sends keep-alive comments while nothing happens', async () => {
    const id = await insertSubmission(proctor.app.ctx.store.db)
    const reader = await stream(`/api/submissions/${id}/events?keepalive=1`)
    await reader.waitForText(': keep-alive\n\n', 3_000)
    expect(reader.ended).toBe(false)
  })

  it('sends stored logs, with the log id in the cursor, and resumes past them', async () => {
    const db = proctor.app.ctx.store.db
    const id = await insertSubmission(db)
    const logId = await insertLog(db, id, 'build', 'Step 1/3 : FROM python\nok\n')
    const reader = await stream(`/api/submissions/${id}/events`)
    await reader.waitFor(isReady)
    const log = reader.events.find((e) => e.event === 'log')
    expect(log?.data).toMatchObject({
      type: 'log',
      id: logId,
      stage: 'build',
      text: 'Step 1/3 : FROM python\nok\n',
    })
    const cursor = log?.id ?? ''
    expect(cursor).toMatch(/^\d+\.\d+$/)

    const later = await insertLog(db, id, 'predict', 'predicting\n')
    await reader.waitFor((m) => m.event === 'log', 2)
    reader.close()

    const resumed = await stream(`/api/submissions/${id}/events`, {
      ...operator,
      'last-event-id': cursor,
    })
    await resumed.waitFor(isReady)
    expect(resumed.events.map((e) => [e.event, e.data.id])).toEqual([['log', later]])
  })

  it("shows a participant their own submission, with the logs the challenge's policy allows", async () => {
    const db = proctor.app.ctx.store.db
    const alice = await participantId(db, 'alice')
    const { token } = await createToken(db, {
      name: 'alice-sse',
      scope: 'participant',
      participant: 'alice',
    })
    const { token: bobToken } = await createToken(db, {
      name: 'bob-sse',
      scope: 'participant',
      participant: 'bob',
    })
    const id = await insertSubmission(db, { participantId: alice })
    await insertLog(db, id, 'build', 'their own build output\n')
    await insertLog(db, id, 'score', 'the grader saw the hidden labels\n')

    const own = await stream(`/api/submissions/${id}/events`, { authorization: `Bearer ${token}` })
    await own.waitFor(isReady)
    expect(own.events.map((e) => [e.event, e.data.stage ?? e.data.state])).toEqual([
      ['state', 'received'],
      ['log', 'build'],
    ])
    expect(own.raw).not.toContain('hidden labels')

    const other = await stream(`/api/submissions/${id}/events`, {
      authorization: `Bearer ${bobToken}`,
    })
    expect(other.status).toBe(404)
    const anonymous = await stream(`/api/submissions/${id}/events`, {})
    expect(anonymous.status).toBe(401)
  })

  it('answers 400 to a Last-Event-ID that is not a cursor', async () => {
    const id = await insertSubmission(proctor.app.ctx.store.db)
    const reader = await stream(`/api/submissions/${id}/events`, {
      ...operator,
      'last-event-id': 'yesterday',
    })
    expect(reader.status).toBe(400)
  })
})

describe('GET /api/challenges/:id/events', () => {
  it("starts now and sends every change of the challenge's submissions, and no other challenge's", async () => {
    const db = proctor.app.ctx.store.db
    const before = await insertSubmission(db)
    const reader = await stream('/api/challenges/iris/events')
    await reader.waitFor(isReady)
    expect(reader.events).toEqual([])

    const digits = await insertSubmission(db, { challengeId: 'digits' })
    await move(db, digits, 'queued')
    await move(db, before, 'queued')
    const iris = await insertSubmission(db)
    await reader.waitFor((m) => m.event === 'state', 2)
    await new Promise((resolve) => setTimeout(resolve, 600))
    expect(reader.events.map((e) => [e.data.submissionId, e.data.state])).toEqual([
      [before, 'queued'],
      [iris, 'received'],
    ])
  })

  it('resumes a challenge stream after Last-Event-ID', async () => {
    const db = proctor.app.ctx.store.db
    const id = await insertSubmission(db)
    const [latest] = await db
      .selectFrom('submission_events')
      .select('id')
      .orderBy('id', 'desc')
      .limit(1)
      .execute()
    await move(db, id, 'queued')
    const reader = await stream('/api/challenges/iris/events', {
      ...operator,
      'last-event-id': String(latest?.id),
    })
    await reader.waitFor(isReady)
    expect(reader.events.map((e) => [e.data.submissionId, e.data.state])).toEqual([[id, 'queued']])
  })

  it('answers 404 for a challenge proctor does not know', async () => {
    const reader = await stream('/api/challenges/no-such-challenge/events')
    expect(reader.status).toBe(404)
  })
})

describe('shutting down', () => {
  it('ends open streams, so proctor stops without waiting for clients to leave', async () => {
    const own = await startProctor({}, { workerSlots: 0 })
    const id = await insertSubmission(own.app.ctx.store.db)
    const reader = await SseReader.open(`${own.address}/api/submissions/${id}/events`, operator)
    await reader.waitFor(isReady)
    const started = Date.now()
    await own.close()
    expect(Date.now() - started).toBeLessThan(5_000)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(reader.ended).toBe(true)
  })
})
