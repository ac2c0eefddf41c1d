import { afterEach, describe, expect, it } from 'vitest'

import { submitTag } from '../../src/intake/submit-tag.ts'
import { Scenario } from './support/scenario.ts'

describe('proctor submit (submitTag)', () => {
  let s: Scenario | undefined

  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('submits an existing tag through the same store and intake path as a hook', async () => {
    s = await Scenario.create()
    const push = await s.project.pushTag('v1', { annotated: true })

    const result = await submitTag(s.ctx, {
      forgeId: 'gitlab',
      projectPath: s.project.path,
      projectId: String(s.projectId),
      tag: 'v1',
      participantUsername: 'alice',
    })
    await s.drain()

    expect(result).toMatchObject({ status: 'accepted', commit: push.commitSha, after: push.after })
    expect(await s.onlySubmission()).toMatchObject({
      state: 'queued',
      commit_sha: push.commitSha,
      quota_subject: 'alice',
    })
    const event = await s.db.selectFrom('hook_events').selectAll().executeTakeFirstOrThrow()
    expect(event.pusher_forge_id).toBe('42')
    expect(event.idempotency_key).toMatch(/^submit:gitlab\|/)
  })

  it('is a duplicate of a hook already delivered for the same push, and of itself', async () => {
    s = await Scenario.create()
    await s.pushAndDeliver('v1')
    await s.drain()
    const options = {
      forgeId: 'gitlab',
      projectPath: s.project.path,
      tag: 'v1',
      participantUsername: 'alice',
    }

    const first = await submitTag(s.ctx, options)
    const second = await submitTag(s.ctx, options)

    const submission = await s.onlySubmission()
    expect([first, second]).toEqual([
      expect.objectContaining({ status: 'duplicate', eventId: 1, submissionId: submission.id }),
      expect.objectContaining({ status: 'duplicate', eventId: 1, submissionId: submission.id }),
    ])
    expect(await s.charges()).toHaveLength(1)
  })

  it.each([
    [{ forgeId: 'nope' }, /no forge with id nope/],
    [{ participantUsername: 'zed' }, /no participant zed/],
    [{ tag: 'v9' }, /tag v9 does not exist/],
    [{ tag: 'a..b' }, /is not a tag name/],
    [{ projectPath: '../etc' }, /is not a project path/],
  ])('refuses %o', async (override, message) => {
    s = await Scenario.create()
    await s.project.pushTag('v1')
    const options = {
      forgeId: 'gitlab',
      projectPath: s.project.path,
      tag: 'v1',
      participantUsername: 'alice',
      ...override,
    }

    await expect(submitTag(s.ctx, options)).rejects.toThrow(message)
    expect(await s.db.selectFrom('hook_events').selectAll().execute()).toEqual([])
  })
})
