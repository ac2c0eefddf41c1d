import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createToken } from '../../src/api/auth.ts'
import { API_TOKEN, startProctor, type Harness } from '../support/proctor-harness.ts'
import { insertSubmission, move } from './support/fixtures.ts'

let proctor: Harness
let irisOrganizer: string
let participant: string

async function call(method: string, path: string, token: string, body?: unknown) {
  const response = await fetch(`${proctor.address}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: response.status, headers: response.headers, text: await response.text() }
}

beforeAll(async () => {
  proctor = await startProctor({}, { workerSlots: 0 })
  const { db } = proctor.app.ctx.store
  irisOrganizer = (
    await createToken(db, { name: 'iris-team', scope: 'organizer', challenges: ['iris'] })
  ).token
  participant = (
    await createToken(db, { name: 'alice', scope: 'participant', participant: 'alice' })
  ).token
})

afterAll(async () => {
  await proctor?.close()
})

describe('organizer actions', () => {
  it('lets an organizer cancel in their challenge only, and records them as the actor', async () => {
    const { db } = proctor.app.ctx.store
    const iris = await insertSubmission(db)
    const digits = await insertSubmission(db, { challengeId: 'digits' })

    const other = await call('POST', `/api/submissions/${digits}/cancel`, irisOrganizer, {
      reason: 'not mine',
    })
    expect(other.status).toBe(403)
    const own = await call('POST', `/api/submissions/${iris}/cancel`, irisOrganizer, {
      reason: 'withdrawn by its team',
    })
    expect(own.status).toBe(200)
    expect(JSON.parse(own.text)).toMatchObject({
      submissionId: iris,
      from: 'received',
      refunded: false,
    })

    const { body } = await proctor.api<{ timeline: { state: string | null; actor: string }[] }>(
      `/api/submissions/${iris}`,
    )
    expect(body.timeline.at(-1)).toMatchObject({ state: 'cancelled', actor: 'organizer:iris-team' })
  })

  it('refuses participants, a missing reason, and a submission that does not exist', async () => {
    const id = await insertSubmission(proctor.app.ctx.store.db)
    expect(
      (await call('POST', `/api/submissions/${id}/cancel`, participant, { reason: 'x' })).status,
    ).toBe(403)
    expect(
      (await call('POST', `/api/submissions/${id}/cancel`, API_TOKEN, { reason: '  ' })).status,
    ).toBe(400)
    expect(
      (await call('POST', '/api/submissions/999999/cancel', API_TOKEN, { reason: 'x' })).status,
    ).toBe(404)
    expect(
      (await call('POST', `/api/submissions/${id}/requeue`, API_TOKEN, { reason: 'x' })).status,
    ).toBe(409)
  })

  it('keeps hand submissions for operators', async () => {
    const body = { forge: 'gitlab', project: 'alice/iris', tag: 'v1', participant: 'alice' }
    expect((await call('POST', '/api/submit', irisOrganizer, body)).status).toBe(403)
    const unknown = await call('POST', '/api/submit', API_TOKEN, { ...body, forge: 'nowhere' })
    expect(unknown.status).toBe(404)
    expect(unknown.text).toMatch(/no forge with id nowhere/)
  })
})

describe('exports', () => {
  it('exports the submissions of a challenge as CSV and JSON', async () => {
    const { db } = proctor.app.ctx.store
    const id = await insertSubmission(db, { tag: '=cmd|calc' })
    await move(db, id, 'queued')
    await move(db, id, 'building')
    await move(db, id, 'evaluating')
    await move(db, id, 'scored', { score: 0.875 })

    const csv = await call(
      'GET',
      '/api/export/submissions.csv?challenge=iris&state=scored',
      irisOrganizer,
    )
    expect(csv.status).toBe(200)
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8')
    expect(csv.headers.get('content-disposition')).toBe(
      'attachment; filename="submissions-iris.csv"',
    )
    const [header, ...rows] = csv.text.trim().split('\r\n')
    expect(header?.split(',').slice(0, 9)).toEqual([
      'id',
      'challenge',
      'round',
      'participant',
      'team',
      'project',
      'tag',
      'commit',
      'state',
    ])
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatch(
      new RegExp(`^${id},iris,,,,alice/iris,'=cmd\\|calc,c{40},scored,,,0\\.875,`),
    )

    const json = await call(
      'GET',
      '/api/export/submissions.json?challenge=iris&state=scored',
      API_TOKEN,
    )
    expect(JSON.parse(json.text)).toEqual([
      expect.objectContaining({ id, tag: '=cmd|calc', state: 'scored', score: 0.875 }),
    ])
  })

  it("refuses an organizer another challenge's export", async () => {
    expect(
      (await call('GET', '/api/export/submissions.csv?challenge=digits', irisOrganizer)).status,
    ).toBe(403)
    expect(
      (await call('GET', '/api/export/leaderboard.csv?challenge=digits', irisOrganizer)).status,
    ).toBe(403)
    expect((await call('GET', '/api/export/submissions.csv', participant)).status).toBe(403)
  })

  it('exports a leaderboard as CSV and JSON', async () => {
    const csv = await call('GET', '/api/export/leaderboard.csv?challenge=iris', API_TOKEN)
    expect(csv.status).toBe(200)
    expect(csv.text.split('\r\n')[0]).toBe(
      'rank,name,subject,score,score_secondary,submission_id,submitted_at,scored_submissions',
    )
    const json = await call('GET', '/api/export/leaderboard.json?challenge=iris', API_TOKEN)
    expect(Array.isArray(JSON.parse(json.text))).toBe(true)
    expect(
      (await call('GET', '/api/export/leaderboard.json?challenge=nope', API_TOKEN)).status,
    ).toBe(404)
  })
})
