import { afterEach, describe, expect, it } from 'vitest'

import { ManualClock } from '../../src/domain/clock.ts'
import { recordOutgoing, recordPublishedRerun } from '../../src/outbox/record.ts'
import { syncOutboxRoutes } from '../../src/outbox/routes.ts'
import { moveSubmission } from '../../src/submissions/transitions.ts'
import { addSubmission, openTestStore, type TestStore } from './support/reporting.ts'

const ROUTES = [
  { target: 'platform', audience: 'platform' as const, forge: null },
  { target: 'forge:gitlab', audience: 'forge' as const, forge: 'gitlab' },
]

describe('which targets a change goes to', () => {
  let ts: TestStore | undefined
  const clock = new ManualClock('2026-03-10T12:00:00Z')

  afterEach(async () => ts?.close())

  async function targetsOf(submissionId: number): Promise<string[]> {
    const rows = await ts!.store.db
      .selectFrom('outbox')
      .select('target')
      .where('submission_id', '=', submissionId)
      .orderBy('id')
      .execute()
    return rows.map((r) => r.target)
  }

  it('writes nothing when no route is configured (the embedded platform without feedback)', async () => {
    ts = await openTestStore('no routes')
    const id = await addSubmission(ts.store, { platformSubmissionId: 'proctor:1' })
    await moveSubmission(ts.store.db, id, {
      to: 'queued',
      message: 'queued',
      actor: 'test',
      at: clock.now(),
    })
    expect(await targetsOf(id)).toEqual([])
  })

  it('reports a rejection on the forge only: it was never announced to the platform', async () => {
    ts = await openTestStore('rejection routes')
    await syncOutboxRoutes(ts.store.db, ROUTES, clock.now())
    const id = await addSubmission(ts.store)
    await moveSubmission(ts.store.db, id, {
      to: 'rejected',
      reasonCode: 'manifest_missing',
      message: 'no crowdai.json at the root of the tagged commit',
      actor: 'proctor',
      at: clock.now(),
    })
    expect(await targetsOf(id)).toEqual(['forge:gitlab'])
  })

  it('sends an announced submission to the platform and to its own forge, not to another forge', async () => {
    ts = await openTestStore('announced routes')
    await syncOutboxRoutes(ts.store.db, ROUTES, clock.now())
    const fromGitlab = await addSubmission(ts.store, { platformSubmissionId: '77' })
    const fromGithub = await addSubmission(ts.store, {
      platformSubmissionId: '78',
      forge: 'github',
    })
    for (const id of [fromGitlab, fromGithub]) {
      await moveSubmission(ts.store.db, id, {
        to: 'queued',
        message: 'queued',
        actor: 'test',
        at: clock.now(),
      })
    }
    expect(await targetsOf(fromGitlab)).toEqual(['forge:gitlab', 'platform'])
    expect(await targetsOf(fromGithub)).toEqual(['platform'])
  })

  it('sends nothing for a re-run until it is published', async () => {
    ts = await openTestStore('rerun routes')
    await syncOutboxRoutes(ts.store.db, ROUTES, clock.now())
    const id = await addSubmission(ts.store, {
      platformSubmissionId: '77',
      state: 'scored',
      score: 0.5,
    })
    const rerun = await ts.store.db
      .insertInto('evaluations')
      .values({
        submission_id: id,
        number: 2,
        kind: 'rerun',
        state: 'queued',
        created_at: clock.now().toISOString(),
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const change = {
      submissionId: id,
      event: 'state' as const,
      state: 'evaluating' as const,
      previousState: 'queued' as const,
      reasonCode: null,
      message: 're-running',
      at: clock.now(),
    }
    expect(await recordOutgoing(ts.store.db, { ...change, evaluationId: Number(rerun.id) })).toBe(0)
    // Without an evaluation named, the latest one (the re-run) decides.
    expect(await recordOutgoing(ts.store.db, change)).toBe(0)

    await ts.store.db
      .updateTable('evaluations')
      .set({ published: 1 })
      .where('id', '=', Number(rerun.id))
      .execute()
    expect(await recordOutgoing(ts.store.db, change)).toBe(2)
  })

  it("reports a published re-run's own result, not the first one's", async () => {
    ts = await openTestStore('published rerun')
    await syncOutboxRoutes(ts.store.db, [ROUTES[0]!], clock.now())
    const id = await addSubmission(ts.store, {
      platformSubmissionId: '77',
      state: 'scored',
      score: 0.5,
    })
    const rerun = await ts.store.db
      .insertInto('evaluations')
      .values({
        submission_id: id,
        number: 2,
        kind: 'rerun',
        state: 'scored',
        score: 0.75,
        created_at: clock.now().toISOString(),
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    expect(await recordPublishedRerun(ts.store.db, Number(rerun.id), clock.now())).toBe(0)

    await ts.store.db
      .updateTable('evaluations')
      .set({ published: 1 })
      .where('id', '=', Number(rerun.id))
      .execute()
    expect(await recordPublishedRerun(ts.store.db, Number(rerun.id), clock.now())).toBe(1)
    const row = await ts.store.db
      .selectFrom('outbox')
      .select('payload_json')
      .executeTakeFirstOrThrow()
    expect(JSON.parse(row.payload_json)).toMatchObject({
      state: 'scored',
      score: 0.75,
      message: 're-run 2: scored 0.75',
    })
  })

  it('marks pending messages dead when their target leaves the configuration', async () => {
    ts = await openTestStore('orphaned routes')
    await syncOutboxRoutes(ts.store.db, ROUTES, clock.now())
    const id = await addSubmission(ts.store, { platformSubmissionId: '77' })
    await moveSubmission(ts.store.db, id, {
      to: 'queued',
      message: 'queued',
      actor: 'test',
      at: clock.now(),
    })

    const result = await syncOutboxRoutes(ts.store.db, [ROUTES[1]!], clock.now())
    expect(result).toEqual({ routes: 1, orphaned: 1 })
    const rows = await ts.store.db
      .selectFrom('outbox')
      .select(['target', 'state', 'last_error'])
      .orderBy('target')
      .execute()
    expect(rows.map((r) => [r.target, r.state])).toEqual([
      ['forge:gitlab', 'pending'],
      ['platform', 'dead'],
    ])
    expect(rows[1]?.last_error).toMatch(/no longer in the configuration/)
  })
})
