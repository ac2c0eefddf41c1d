import { afterEach, describe, expect, it } from 'vitest'

import type { Platform } from '../../src/platform/platform.ts'
import { FLOWERS } from './support/context.ts'
import { Scenario } from './support/scenario.ts'

describe('intake job', () => {
  let s: Scenario | undefined

  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('queues a valid tag push: one charge, evaluation #1, its evaluate job, snapshot and timeline', async () => {
    s = await Scenario.create()
    const { push, answer } = await s.pushAndDeliver('v1')
    expect(answer.status).toBe(202)

    await s.drain()

    const submission = await s.onlySubmission()
    expect(submission).toMatchObject({
      state: 'queued',
      challenge_id: FLOWERS,
      tag: 'v1',
      commit_sha: push.commitSha,
      quota_subject: 'alice',
      authors_json: '["alice"]',
      platform_submission_id: `proctor:${submission.id}`,
      status_detail: 'queued; 4 of 5 submissions left in the 24 h window (the next slot frees at 2026-03-11T12:00:00.000Z)',
    })
    expect(submission.data_hash).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(submission.grader_image).toBe(`{"score":"proctor/grader@sha256:${'ab'.repeat(32)}"}`)
    expect(JSON.parse(submission.challenge_snapshot_json ?? '{}')).toMatchObject({ id: FLOWERS })
    const [evaluate] = await s.jobs('evaluate')
    expect(evaluate).toMatchObject({
      queue: FLOWERS,
      submission_id: submission.id,
      fairness_key: 'alice',
      state: 'waiting',
    })
    const evaluations = await s.db.selectFrom('evaluations').selectAll().execute()
    expect(evaluations).toEqual([
      expect.objectContaining({
        number: 1,
        kind: 'first',
        state: 'queued',
        id: evaluate?.evaluation_id,
      }),
    ])
    expect((await s.charges()).map((c) => c.subject)).toEqual(['alice'])
    expect((await s.jobs('intake')).map((j) => j.state)).toEqual(['done'])
    const event = await s.db.selectFrom('hook_events').selectAll().executeTakeFirstOrThrow()
    expect(event).toMatchObject({ status: 'processed', submission_id: submission.id })
    expect((await s.timeline(submission.id)).map((e) => e.state)).toEqual(['received', 'queued'])
  })

  it('builds the commit behind an annotated tag, not the tag object', async () => {
    s = await Scenario.create()
    const { push } = await s.pushAndDeliver('v1', { annotated: true })
    expect(push.after).not.toBe(push.commitSha)

    await s.drain()

    expect(await s.onlySubmission()).toMatchObject({ state: 'queued', commit_sha: push.commitSha })
  })

  it('peels a GitHub-style event whose checkout sha is the tag object', async () => {
    s = await Scenario.create()
    const push = await s.project.pushTag('v1', { annotated: true })
    await s.deliverPush({ ref: push.ref, after: push.after, commitSha: push.after })

    await s.drain()

    expect(await s.onlySubmission()).toMatchObject({ state: 'queued', commit_sha: push.commitSha })
  })

  it('answers a duplicate delivery with the submission and its state once it exists', async () => {
    s = await Scenario.create()
    const { push } = await s.pushAndDeliver('v1')
    await s.drain()

    const again = await s.deliverPush(push)

    const submission = await s.onlySubmission()
    expect(again).toEqual({
      status: 200,
      body: {
        status: 'duplicate',
        eventId: 1,
        submissionId: submission.id,
        message: `already recorded as event 1; submission ${submission.id} is queued`,
      },
    })
  })

  it('makes one submission, one charge and one job from duplicate deliveries', async () => {
    s = await Scenario.create()
    const push = await s.project.pushTag('v1')
    const answers = await Promise.all([
      s.deliverPush(push),
      s.deliverPush(push),
      s.deliverPush(push),
    ])
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 202])

    await s.drain()

    expect(await s.submissions()).toHaveLength(1)
    expect(await s.charges()).toHaveLength(1)
    expect(await s.jobs('intake')).toHaveLength(1)
    expect(await s.jobs('evaluate')).toHaveLength(1)
  })

  it('keeps one submission when a tag is deleted and pushed again on the same commit', async () => {
    s = await Scenario.create()
    const first = await s.pushAndDeliver('v1', { annotated: true })
    await s.drain()
    await s.project.deleteTag('v1')
    // A new annotated tag object (another message): a new `after`, so a new event, but the
    // same commit. The same message within the same second would be the same object.
    const second = await s.pushAndDeliver('v1', { annotated: true, message: 'submitted again' })
    expect(second.push.after).not.toBe(first.push.after)
    expect(second.answer.status).toBe(202)

    await s.drain()

    const submission = await s.onlySubmission()
    expect(submission.state).toBe('queued')
    expect(await s.charges()).toHaveLength(1)
    const events = await s.db.selectFrom('hook_events').selectAll().orderBy('id').execute()
    expect(events.map((e) => [e.status, e.submission_id])).toEqual([
      ['processed', submission.id],
      ['processed', submission.id],
    ])
    expect((await s.timeline(submission.id)).at(-1)?.message).toMatch(
      /pushed again on the same commit/,
    )
  })

  it('treats a lightweight tag deleted and pushed again on the same commit as a duplicate delivery', async () => {
    s = await Scenario.create()
    await s.pushAndDeliver('v1')
    await s.drain()
    await s.project.deleteTag('v1')

    const again = await s.pushAndDeliver('v1')

    expect(again.answer.body).toMatchObject({ status: 'duplicate', eventId: 1 })
    expect(await s.submissions()).toHaveLength(1)
  })

  it('makes a new submission of the new commit when a tag is moved; the old keeps its commit', async () => {
    s = await Scenario.create()
    const first = await s.pushAndDeliver('v1')
    await s.drain()
    await s.project.commit({ 'model.txt': 'better' })
    const moved = await s.project.moveTag('v1')
    await s.deliverPush(moved)

    await s.drain()

    const [old, renewed] = await s.submissions()
    expect(old).toMatchObject({ tag: 'v1', commit_sha: first.push.commitSha, state: 'queued' })
    expect(renewed).toMatchObject({ tag: 'v1', commit_sha: moved.commitSha, state: 'queued' })
    expect(await s.charges()).toHaveLength(2)
  })

  it('makes a new submission for a new tag on the same commit', async () => {
    s = await Scenario.create()
    await s.pushAndDeliver('v1')
    await s.pushAndDeliver('v2')

    await s.drain()

    const submissions = await s.submissions()
    expect(submissions.map((x) => x.tag)).toEqual(['v1', 'v2'])
    expect(new Set(submissions.map((x) => x.commit_sha)).size).toBe(1)
  })

  it('charges the pusher, never the authors, and drops authors the directory does not know', async () => {
    s = await Scenario.create({
      files: {
        'crowdai.json': JSON.stringify({
          challenge_id: FLOWERS,
          authors: ['Alice', 'carol', 'nobody'],
        }),
      },
    })
    await s.pushAndDeliver('v1', { userId: 43, username: 'bob' })

    await s.drain()

    const submission = await s.onlySubmission()
    expect(submission).toMatchObject({
      state: 'queued',
      quota_subject: 'team:flowers',
      authors_json: '["alice","carol"]',
    })
    expect((await s.charges()).map((c) => c.subject)).toEqual(['team:flowers'])
    const notes = (await s.timeline(submission.id)).filter((e) => e.kind === 'note')
    expect(notes.map((n) => n.message)).toEqual([
      'author "nobody" in crowdai.json is not a registered participant; left out of the authors',
    ])
  })

  it('keeps an over-quota submission failed after a re-run, a redelivered hook and a day passing', async () => {
    s = await Scenario.create({ challenges: [{ extra: { quota: { limit: 1, window: '24h' } } }] })
    await s.pushAndDeliver('v10')
    await s.drain()
    await s.project.commit({ 'model.txt': 'v11' })
    const v11 = await s.project.pushTag('v11')
    expect((await s.deliverPush(v11, { idempotencyKey: 'key-v11' })).status).toBe(202)
    await s.drain()

    const [, over] = await s.submissions()
    expect(over).toMatchObject({
      state: 'failed',
      reason_code: 'quota_exceeded',
      reason_message:
        'over quota: 1 of 1 submissions used in the 24 h window; the next slot frees at 2026-03-11T12:00:00.000Z',
    })

    // A restart that re-runs the intake job of v11 finds it terminal and stops.
    const overEvent = over?.event_id ?? 0
    await s.db
      .updateTable('hook_events')
      .set({ status: 'pending' })
      .where('id', '=', overEvent)
      .execute()
    await s.ctx.queue.enqueue(s.db, {
      kind: 'intake',
      queue: 'intake',
      eventId: overEvent,
      maxAttempts: 3,
    })
    await s.drain()
    const redelivered = await s.deliverPush(v11, { idempotencyKey: 'key-v11' })
    s.t.clock.advance(25 * 3_600_000)
    await s.drain()

    expect(redelivered.body).toMatchObject({
      status: 'duplicate',
      submissionId: over?.id,
    })
    expect(redelivered.body.message).toMatch(/is failed: quota_exceeded$/)
    expect((await s.submissions())[1]).toMatchObject({
      state: 'failed',
      reason_code: 'quota_exceeded',
    })
    expect(await s.charges()).toHaveLength(1)
    expect(await s.jobs('evaluate')).toHaveLength(1)
  })

  it('lets exactly one of two racing pushes through a quota of one', async () => {
    s = await Scenario.create({ challenges: [{ extra: { quota: { limit: 1, window: '24h' } } }] })
    await s.pushAndDeliver('v10')
    await s.project.commit({ 'model.txt': 'v11' })
    await s.pushAndDeliver('v11')
    const claim = () =>
      s!.ctx.queue.claim({
        workerId: 'w',
        queues: ['intake'],
        capabilities: [],
        kinds: ['intake'],
        leaseMs: 60_000,
      })
    const jobs = [await claim(), await claim()]

    const { runIntakeJob } = await import('../../src/intake/intake-job.ts')
    await Promise.all(jobs.map((job) => runIntakeJob(s!.ctx, job!)))

    expect((await s.submissions()).map((x) => x.state).sort()).toEqual(['failed', 'queued'])
    expect(await s.charges()).toHaveLength(1)
  })

  it('retries while the platform is unreachable, then queues once', async () => {
    let calls = 0
    const platform: Platform = {
      kind: 'webhook',
      targets: [],
      update: () => Promise.reject(new Error('not used by intake')),
      announce: (submission) => {
        calls++
        return calls === 1
          ? Promise.reject(new Error('connect ECONNREFUSED'))
          : Promise.resolve({ ok: true, platformSubmissionId: `ext-${submission.id}` })
      },
    }
    s = await Scenario.create({ platform })
    await s.pushAndDeliver('v1')

    const first = await s.ctx.queue.claim({
      workerId: 'w',
      queues: ['intake'],
      capabilities: [],
      kinds: ['intake'],
      leaseMs: 60_000,
    })
    const { runIntakeJob } = await import('../../src/intake/intake-job.ts')
    await expect(runIntakeJob(s.ctx, first!)).rejects.toThrow(/platform did not answer/)
    expect(await s.onlySubmission()).toMatchObject({
      state: 'received',
      status_detail: 'waiting for the platform to answer (attempt 1)',
    })
    await s.ctx.queue.withLease(first!, (trx) =>
      s!.ctx.queue.retry(trx, first!, 0, 'platform down'),
    )
    await s.drain()

    expect(await s.onlySubmission()).toMatchObject({
      state: 'queued',
      platform_submission_id: 'ext-1',
    })
    expect(await s.charges()).toHaveLength(1)
    expect(calls).toBe(2)
  })

  it('fails platform_refused when the platform refuses, without a charge', async () => {
    const platform: Platform = {
      kind: 'webhook',
      targets: [],
      update: () => Promise.reject(new Error('not used by intake')),
      announce: () => Promise.resolve({ ok: false, message: 'team is disqualified' }),
    }
    s = await Scenario.create({ platform })
    await s.pushAndDeliver('v1')

    await s.drain()

    expect(await s.onlySubmission()).toMatchObject({
      state: 'failed',
      reason_code: 'platform_refused',
      reason_message: 'the platform refused the submission: team is disqualified',
    })
    expect(await s.charges()).toHaveLength(0)
  })
})
