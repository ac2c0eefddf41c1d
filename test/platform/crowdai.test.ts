import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'

import { afterEach, describe, expect, it } from 'vitest'

import { ManualClock } from '../../src/domain/clock.ts'
import { OutboxDispatcher } from '../../src/outbox/dispatcher.ts'
import { syncOutboxRoutes } from '../../src/outbox/routes.ts'
import { listAnnouncements } from '../../src/platform/announcements.ts'
import { CrowdaiPlatform } from '../../src/platform/crowdai.ts'
import type { CrowdaiConfig } from '../../src/platform/platform-config.ts'
import { platformTargets } from '../../src/platform/updates.ts'
import { makeRedactor } from '../../src/runtime/redact.ts'
import type { Submission } from '../../src/store/schema.ts'
import { moveSubmission } from '../../src/submissions/transitions.ts'
import {
  addParticipant,
  addSubmission,
  openTestStore,
  silentLog,
  type TestStore,
} from '../outbox/support/reporting.ts'
import { startCrowdaiStandIn, type CrowdaiStandIn } from './support/crowdai-stand-in.ts'

const ADMIN_KEY = 'a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0'
const IRIS_KEY = 'b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1'
const WINE_KEY = 'c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2'
const ALICE_KEY = 'd3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3'
const BOB_KEY = 'e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4'
const FORGES = [
  {
    id: 'gitlab',
    kind: 'gitlab' as const,
    baseUrl: 'https://gitlab.example.test',
    cloneUrl: 'git://127.0.0.1/{path}.git',
    hookSecrets: ['test-secret'],
    feedback: {
      commitStatus: false,
      issue: false,
      issueMinIntervalSeconds: 5,
      statusName: 'proctor',
      labels: [],
      timeoutMs: 1000,
      logTailLines: 40,
    },
  },
]

describe('the crowdAI platform', () => {
  let ts: TestStore | undefined
  let platform: CrowdaiStandIn | undefined

  afterEach(async () => {
    await platform?.standIn.close()
    await ts?.close()
  })

  async function setUp(name: string, keys: { iris?: string } = {}) {
    ts = await openTestStore(name)
    const { store } = ts
    const clock = new ManualClock('2026-03-10T12:00:00Z')
    platform = await startCrowdaiStandIn({
      adminKey: ADMIN_KEY,
      organizerKeys: { iris_2026: IRIS_KEY, wine_2026: WINE_KEY },
      participants: { alice: ALICE_KEY, 'bob-on-platform': BOB_KEY },
    })
    const config: CrowdaiConfig = {
      baseUrl: platform.standIn.url,
      lookupKey: ADMIN_KEY,
      timeoutMs: 300,
      challenges: {
        iris: { clientName: 'iris_2026', organizerKey: keys.iris ?? IRIS_KEY, rounds: {} },
        wine: { clientName: 'wine_2026', organizerKey: WINE_KEY, rounds: {} },
      },
    }
    const redactor = makeRedactor([ADMIN_KEY, IRIS_KEY, WINE_KEY, keys.iris ?? ''])
    const context = { forges: FORGES, publicUrl: 'https://proctor.example.test' }
    const crowdai = new CrowdaiPlatform(config, {
      store,
      clock,
      log: silentLog,
      context,
      redact: (t) => redactor.redact(t),
    })
    const alice = await addParticipant(store, { username: 'alice' })
    const bob = await addParticipant(store, { username: 'bob', platformId: 'bob-on-platform' })
    const dispatcher = new OutboxDispatcher(
      { store, clock, log: silentLog },
      platformTargets(crowdai, store, context),
      {
        redact: (t) => redactor.redact(t),
      },
    )
    const load = (id: number): Promise<Submission> =>
      store.db.selectFrom('submissions').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
    await syncOutboxRoutes(
      store.db,
      [{ target: 'platform', audience: 'platform', forge: null }],
      clock.now(),
    )
    return { store, clock, crowdai, alice, bob, dispatcher, load }
  }

  it("announces with the participant's looked-up key under the challenge's own key, and stores no participant key", async () => {
    const s = await setUp('crowdai announce')
    const id = await addSubmission(s.store, {
      challengeId: 'iris',
      participantId: s.alice,
      tag: 'v1.0',
      projectPath: 'alice/iris',
    })

    const answer = await s.crowdai.announce(await s.load(id))
    expect(answer).toEqual({ ok: true, platformSubmissionId: '5000' })
    expect(platform?.keyLog.map((k) => [k.method, k.path, k.key])).toEqual([
      ['GET', '/api/participants/alice', ADMIN_KEY],
      ['POST', '/api/external_graders', IRIS_KEY],
    ])
    const create = platform?.standIn.received.find((r) => r.method === 'POST')?.json as Record<
      string,
      unknown
    >
    expect(create).toMatchObject({
      api_key: ALICE_KEY,
      challenge_client_name: 'iris_2026',
      grading_status: 'submitted',
      meta: {
        proctor_submission_id: id,
        repo_url: 'https://gitlab.example.test/alice/iris',
        repo_ref: 'v1.0',
        gitlab_project_id: '101',
        proctor_url: `https://proctor.example.test/submissions/${id}`,
      },
    })
    expect((await s.load(id)).platform_submission_id).toBe('5000')

    // The participant's key went to the platform and nowhere else: not into the database.
    await s.store.close()
    const files = await readdir(ts!.dir)
    for (const file of files) {
      const bytes = await readFile(path.join(ts!.dir, file))
      expect(bytes.includes(ALICE_KEY)).toBe(false)
    }
  })

  it('looks a participant up by their platform name when it differs', async () => {
    const s = await setUp('crowdai platform name')
    const id = await addSubmission(s.store, { challengeId: 'wine', participantId: s.bob })
    expect(await s.crowdai.announce(await s.load(id))).toEqual({
      ok: true,
      platformSubmissionId: '5000',
    })
    expect(platform?.keyLog[0]?.path).toBe('/api/participants/bob-on-platform')
  })

  it("turns a 400 into a refusal carrying the platform's message", async () => {
    const s = await setUp('crowdai refusal')
    platform?.slots.set('alice', 0)
    const id = await addSubmission(s.store, { challengeId: 'iris', participantId: s.alice })

    const answer = await s.crowdai.announce(await s.load(id))
    expect(answer).toEqual({
      ok: false,
      message: 'The participant has no submission slots remaining for today.',
    })
    expect((await listAnnouncements(s.store, id)).map((a) => a.state)).toEqual(['refused'])
    expect((await s.load(id)).platform_submission_id).toBeNull()
  })

  it('refuses a participant the platform does not know, naming them', async () => {
    const s = await setUp('crowdai unknown participant')
    const carol = await addParticipant(s.store, { username: 'carol' })
    const id = await addSubmission(s.store, { challengeId: 'iris', participantId: carol })
    const answer = await s.crowdai.announce(await s.load(id))
    expect(answer.ok).toBe(false)
    expect(answer.ok ? '' : answer.message).toMatch(/no participant named carol/)
  })

  it('throws, naming the setting to fix, when the platform refuses the organizer key (401)', async () => {
    const s = await setUp('crowdai bad key', { iris: 'f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5' })
    const id = await addSubmission(s.store, { challengeId: 'iris', participantId: s.alice })
    await expect(s.crowdai.announce(await s.load(id))).rejects.toThrow(
      /platform\.crowdai\.challenges\.iris\.organizerKey/,
    )

    // An update sent with the bad key is refused for good: dead, with the reason, the key redacted.
    await s.store.db
      .updateTable('submissions')
      .set({ platform_submission_id: '42' })
      .where('id', '=', id)
      .execute()
    await moveSubmission(s.store.db, id, {
      to: 'queued',
      message: 'queued',
      actor: 'test',
      at: s.clock.now(),
    })
    expect(await s.dispatcher.deliverDue()).toBe(1)
    const row = await s.store.db
      .selectFrom('outbox')
      .select(['state', 'last_error'])
      .executeTakeFirstOrThrow()
    expect(row.state).toBe('dead')
    expect(row.last_error).toMatch(/HTTP 401/)
    expect(row.last_error).not.toContain('f5f5f5f5')
  })

  it('reports progress, score and failure, replacing meta as a whole each time', async () => {
    const s = await setUp('crowdai updates')
    const scored = await addSubmission(s.store, { challengeId: 'iris', participantId: s.alice })
    const failed = await addSubmission(s.store, { challengeId: 'iris', participantId: s.alice })
    for (const id of [scored, failed]) {
      const answer = await s.crowdai.announce(await s.load(id))
      expect(answer.ok).toBe(true)
    }
    const move = (
      id: number,
      to: 'queued' | 'building' | 'evaluating' | 'scored' | 'failed',
      message: string,
    ) =>
      moveSubmission(s.store.db, id, {
        to,
        message,
        actor: 'test',
        at: s.clock.now(),
        ...(to === 'scored' ? { set: { score: 0.91, score_secondary: 0.88 } } : {}),
        ...(to === 'failed' ? { reasonCode: 'time_limit' as const } : {}),
      })
    await move(scored, 'queued', 'queued; 9 of 10 left')
    await move(scored, 'building', 'building the image')
    await move(scored, 'evaluating', 'running predict')
    await move(scored, 'scored', 'scored 0.9100')
    await move(failed, 'queued', 'queued')
    await move(failed, 'evaluating', 'running predict')
    await move(failed, 'failed', 'predict ran past its 600 s time limit')
    while ((await s.dispatcher.deliverDue()) > 0) {
      // Each pass delivers the head of each submission's messages.
    }

    const first = platform?.submissions.get(5000)
    const second = platform?.submissions.get(5001)
    expect(first?.history).toEqual([
      {
        status: 'submitted',
        score: null,
        message: 'received by proctor; waiting for the quota check',
      },
      { status: 'submitted', score: null, message: 'queued; 9 of 10 left' },
      { status: 'submitted', score: null, message: 'building the image' },
      { status: 'submitted', score: null, message: 'running predict' },
      { status: 'graded', score: 0.91, message: 'scored 0.9100' },
    ])
    expect(second?.history.map((h) => h.status)).toEqual([
      'submitted',
      'submitted',
      'submitted',
      'failed',
    ])
    expect(second?.history.at(-1)?.message).toBe('predict ran past its 600 s time limit')

    // With meta_overwrite the platform holds proctor's latest meta; without it the platform
    // would keep every key's first value (`proctor_state: received`).
    expect(first?.meta).toMatchObject({
      proctor_state: 'scored',
      proctor_submission_id: scored,
      repo_ref: expect.any(String) as unknown,
    })
    expect(second?.meta).toMatchObject({
      proctor_state: 'failed',
      proctor_reason_code: 'time_limit',
    })
    const patches = platform?.standIn.received.filter((r) => r.method === 'PATCH') ?? []
    expect(patches.length).toBe(7)
    expect(
      patches.every((p) => (p.json as { meta_overwrite?: unknown }).meta_overwrite === true),
    ).toBe(true)

    const merged = await fetch(`${platform?.standIn.url}/api/external_graders/5000`, {
      method: 'PATCH',
      headers: { authorization: `Token token=${IRIS_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ meta: { proctor_state: 'queued', extra: 1 } }),
    })
    expect(merged.status).toBe(202)
    expect(first?.meta).toMatchObject({ proctor_state: 'scored', extra: 1 })
  })

  it("never sends one challenge's organizer key for another challenge's submissions", async () => {
    const s = await setUp('crowdai keys per challenge')
    const iris = await addSubmission(s.store, { challengeId: 'iris', participantId: s.alice })
    const wine = await addSubmission(s.store, { challengeId: 'wine', participantId: s.alice })
    const unknown = await addSubmission(s.store, { challengeId: 'mnist', participantId: s.alice })
    for (const id of [iris, wine])
      expect((await s.crowdai.announce(await s.load(id))).ok).toBe(true)
    await expect(s.crowdai.announce(await s.load(unknown))).rejects.toThrow(
      /mnist has no entry under platform\.crowdai\.challenges/,
    )

    for (const id of [iris, wine]) {
      await moveSubmission(s.store.db, id, {
        to: 'queued',
        message: 'queued',
        actor: 'test',
        at: s.clock.now(),
      })
      await moveSubmission(s.store.db, id, {
        to: 'failed',
        reasonCode: 'crashed',
        message: 'exit 1',
        actor: 'test',
        at: s.clock.now(),
      })
    }
    while ((await s.dispatcher.deliverDue()) > 0) {
      // Until every message is delivered.
    }

    const organizerCalls = platform?.keyLog.filter((k) => k.method !== 'GET') ?? []
    expect(organizerCalls).toHaveLength(6)
    for (const call of organizerCalls) {
      expect(call.key).toBe(call.challenge === 'iris_2026' ? IRIS_KEY : WINE_KEY)
    }
    expect(organizerCalls.filter((c) => c.challenge === 'wine_2026')).toHaveLength(3)
  })

  it('a retried create reuses one that succeeded, and creates again only after a lost answer', async () => {
    const s = await setUp('crowdai retried create')
    // The create succeeded but the intake job died before it stored the id.
    const stored = await addSubmission(s.store, { challengeId: 'iris', participantId: s.alice })
    const first = await s.crowdai.announce(await s.load(stored))
    await s.store.db
      .updateTable('submissions')
      .set({ platform_submission_id: null })
      .where('id', '=', stored)
      .execute()
    const again = await s.crowdai.announce(await s.load(stored))
    expect(again).toEqual(first)
    expect(platform?.standIn.received.filter((r) => r.method === 'POST')).toHaveLength(1)

    // The platform created it but its answer never arrived (timeout). The API cannot
    // search, so proctor creates again; both carry meta.proctor_submission_id, and the
    // record says the first one is uncertain.
    const lost = await addSubmission(s.store, { challengeId: 'iris', participantId: s.alice })
    platform!.hangNextCreateMs = 1_000
    await expect(s.crowdai.announce(await s.load(lost))).rejects.toThrow(/no answer within 300 ms/)
    const retried = await s.crowdai.announce(await s.load(lost))
    expect(retried.ok).toBe(true)
    expect((await listAnnouncements(s.store, lost)).map((a) => a.state)).toEqual([
      'uncertain',
      'created',
    ])
    const copies = [...(platform?.submissions.values() ?? [])].filter(
      (p) => p.meta.proctor_submission_id === lost,
    )
    expect(copies).toHaveLength(2)
  })
})
