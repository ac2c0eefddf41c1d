import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'

import { createToken } from '../../src/api/auth.ts'
import { leaderboardRoutes } from '../../src/api/leaderboard-routes.ts'
import { challengeSchema, type Challenge } from '../../src/config/challenge.ts'
import { ManualClock } from '../../src/domain/clock.ts'
import { computeLeaderboard } from '../../src/platform/leaderboard.ts'
import type { Store } from '../../src/store/database.ts'
import {
  addParticipant,
  addSubmission,
  openTestStore,
  testContext,
  type TestStore,
} from '../outbox/support/reporting.ts'

function challenge(
  id: string,
  scoring: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): Challenge {
  const definition = challengeSchema.parse({
    id,
    title: id,
    data: { inputs: 'inputs', labels: 'labels' },
    phases: [{ name: 'predict', image: 'participant' }],
    scoring,
    ...extra,
  })
  return { definition, file: `${id}.yaml`, dir: '.', inputsDir: 'inputs', labelsDir: 'labels' }
}

const at = (minute: number) => new Date(Date.UTC(2026, 2, 10, 12, minute)).toISOString()

describe('embedded leaderboards', () => {
  let ts: TestStore | undefined
  const apps: FastifyInstance[] = []

  afterEach(async () => {
    for (const app of apps) await app.close()
    apps.length = 0
    await ts?.close()
  })

  /** alice and bob share team flowers; carol is alone. */
  async function people(store: Store) {
    const alice = await addParticipant(store, { username: 'alice', team: 'flowers' })
    const bob = await addParticipant(store, { username: 'bob', team: 'flowers' })
    const carol = await addParticipant(store, { username: 'carol', displayName: 'Carol C.' })
    const scored = (
      participantId: number,
      subject: string,
      score: number,
      minute: number,
      more: Parameters<typeof addSubmission>[1] = {},
    ) =>
      addSubmission(store, {
        challengeId: 'iris',
        participantId,
        quotaSubject: subject,
        state: 'scored',
        score,
        createdAt: at(minute),
        stateChangedAt: at(minute + 1),
        ...more,
      })
    return { alice, bob, carol, scored }
  }

  it('ranks each team or participant by their best score, ties by time, without debug runs', async () => {
    ts = await openTestStore('leaderboard best')
    const p = await people(ts.store)
    await p.scored(p.alice, 'team:flowers', 0.8, 1)
    const teamBest = await p.scored(p.bob, 'team:flowers', 0.9, 2)
    await p.scored(p.bob, 'team:flowers', 0.9, 5)
    const carolBest = await p.scored(p.carol, 'carol', 0.9, 3)
    await p.scored(p.carol, 'carol', 0.99, 4, { debug: true })
    await addSubmission(ts.store, {
      challengeId: 'iris',
      participantId: p.carol,
      quotaSubject: 'carol',
      state: 'failed',
      createdAt: at(6),
    })

    const board = await computeLeaderboard(ts.store.db, challenge('iris').definition, {
      view: 'public',
      now: new Date(at(30)),
    })
    expect(
      board.entries.map((e) => [e.rank, e.name, e.score, e.submissionId, e.submissions]),
    ).toEqual([
      [1, 'flowers', 0.9, teamBest, 3],
      [2, 'Carol C.', 0.9, carolBest, 1],
    ])
  })

  it('counts the latest or the selected submission when the challenge says so, and minimizes when asked', async () => {
    ts = await openTestStore('leaderboard policies')
    const p = await people(ts.store)
    await p.scored(p.alice, 'team:flowers', 0.2, 1, { manifestExtra: { selected: true } })
    await p.scored(p.bob, 'team:flowers', 0.5, 2)
    await p.scored(p.carol, 'carol', 0.3, 3)

    const latest = await computeLeaderboard(
      ts.store.db,
      challenge('iris', { leaderboard: 'latest' }).definition,
      {
        view: 'public',
        now: new Date(at(30)),
      },
    )
    expect(latest.entries.map((e) => [e.name, e.score])).toEqual([
      ['flowers', 0.5],
      ['Carol C.', 0.3],
    ])

    const selected = await computeLeaderboard(
      ts.store.db,
      challenge('iris', { leaderboard: 'selected', direction: 'minimize' }).definition,
      { view: 'public', now: new Date(at(30)) },
    )
    expect(selected.entries.map((e) => [e.rank, e.name, e.score])).toEqual([[1, 'flowers', 0.2]])

    const lowest = await computeLeaderboard(
      ts.store.db,
      challenge('iris', { direction: 'minimize' }).definition,
      {
        view: 'public',
        now: new Date(at(30)),
      },
    )
    expect(lowest.entries.map((e) => [e.name, e.score])).toEqual([
      ['flowers', 0.2],
      ['Carol C.', 0.3],
    ])
  })

  it('freezes the public board at freezeAt while organizers see it live', async () => {
    ts = await openTestStore('leaderboard freeze')
    const p = await people(ts.store)
    await p.scored(p.alice, 'team:flowers', 0.5, 1)
    await p.scored(p.carol, 'carol', 0.6, 2)
    await p.scored(p.alice, 'team:flowers', 0.9, 20)
    // Pushed before the freeze, scored after it: not on the frozen board.
    await p.scored(p.carol, 'carol', 0.95, 9, { stateChangedAt: at(12) })
    const definition = challenge('iris', { freezeAt: at(10) }).definition

    const frozen = await computeLeaderboard(ts.store.db, definition, {
      view: 'public',
      now: new Date(at(30)),
    })
    expect(frozen.frozenAt).toBe(at(10))
    expect(frozen.entries.map((e) => [e.name, e.score])).toEqual([
      ['Carol C.', 0.6],
      ['flowers', 0.5],
    ])
    const live = await computeLeaderboard(ts.store.db, definition, {
      view: 'organizer',
      now: new Date(at(30)),
    })
    expect(live.frozenAt).toBeNull()
    expect(live.entries.map((e) => [e.name, e.score])).toEqual([
      ['Carol C.', 0.95],
      ['flowers', 0.9],
    ])
  })

  it('serves public boards to anyone, hides hidden scores from all but organizers until released, and keeps rounds apart', async () => {
    ts = await openTestStore('leaderboard routes')
    const p = await people(ts.store)
    const rounds = [
      { id: 'r1', start: at(0), end: at(20) },
      { id: 'r2', start: at(20), end: at(59) },
    ]
    await p.scored(p.alice, 'team:flowers', 0.7, 1, { challengeId: 'iris', roundId: 'r1' })
    await p.scored(p.carol, 'carol', 0.8, 21, { challengeId: 'iris', roundId: 'r2' })
    await p.scored(p.carol, 'carol', 0.4, 2, { challengeId: 'wine' })
    const clock = new ManualClock(at(30))
    const challenges = new Map([
      ['iris', challenge('iris', { hidden: true }, { rounds })],
      ['wine', challenge('wine')],
    ])
    const ctx = testContext(
      ts.store,
      clock,
      { platform: { leaderboards: { public: ['iris'] } } },
      challenges,
    )
    const app = Fastify()
    apps.push(app)
    leaderboardRoutes(app, ctx)
    const irisOrganizer = (
      await createToken(ts.store.db, { name: 'o', scope: 'organizer', challenges: ['iris'] })
    ).token
    const wineOrganizer = (
      await createToken(ts.store.db, { name: 'w', scope: 'organizer', challenges: ['wine'] })
    ).token
    const get = async (url: string, token?: string) => {
      const response = await app.inject({
        method: 'GET',
        url,
        ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
      })
      return {
        status: response.statusCode,
        body: response.json<{
          roundId: string
          scoresHidden: boolean
          entries: { name: string; score: number | null; rank: number | null }[]
        }>(),
      }
    }

    // Anyone may read iris's board: the current round (r2), names without scores.
    const anonymous = await get('/api/leaderboards/iris')
    expect(anonymous.status).toBe(200)
    expect(anonymous.body.roundId).toBe('r2')
    expect(anonymous.body.scoresHidden).toBe(true)
    expect(anonymous.body.entries).toEqual([
      expect.objectContaining({ name: 'Carol C.', score: null, rank: null }),
    ])
    expect((await get('/api/leaderboards/iris?round=r1')).body.entries.map((e) => e.name)).toEqual([
      'flowers',
    ])

    // wine's board is not public; its organizer does not see iris's hidden scores either.
    expect((await get('/api/leaderboards/wine')).status).toBe(401)
    expect(
      (await get('/api/leaderboards/wine', wineOrganizer)).body.entries.map((e) => e.score),
    ).toEqual([0.4])
    expect((await get('/api/leaderboards/iris', wineOrganizer)).body.scoresHidden).toBe(true)
    expect(
      (await get('/api/leaderboards/iris', irisOrganizer)).body.entries.map((e) => e.score),
    ).toEqual([0.8])
    expect((await get('/api/leaderboards/nope', irisOrganizer)).status).toBe(404)

    const refused = await app.inject({
      method: 'POST',
      url: '/api/leaderboards/iris/release',
      headers: { authorization: `Bearer ${wineOrganizer}` },
    })
    expect(refused.statusCode).toBe(403)
    const released = await app.inject({
      method: 'POST',
      url: '/api/leaderboards/iris/release',
      headers: { authorization: `Bearer ${irisOrganizer}` },
      payload: { round: 'r2' },
    })
    expect(released.json()).toEqual({ challengeId: 'iris', roundId: 'r2', released: true })
    const after = await get('/api/leaderboards/iris')
    expect(after.body.entries).toEqual([
      expect.objectContaining({ name: 'Carol C.', score: 0.8, rank: 1 }),
    ])
    // Releasing round 2 leaves round 1 hidden.
    expect((await get('/api/leaderboards/iris?round=r1')).body.scoresHidden).toBe(true)
  })
})
