import { mkdtempSync, symlinkSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { TEST_ENV } from '../support/env.ts'
import { createProject } from '../support/git-server.ts'
import { gitlabTagPush, startProctor, type Harness } from '../support/proctor-harness.ts'
import { assertServicesUp } from '../support/services.ts'

const SECRET = 'grader-secret-Zq81xWk2'
const suffix = Date.now().toString(36)
let proctor: Harness
let projectId = 9500

beforeAll(async () => {
  await assertServicesUp()
  process.env.PROCTOR_TEST_GRADER_TOKEN = SECRET
  // The test challenge beside the example ones: the harness loads one folder.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'proctor-challenges-'))
  symlinkSync(
    path.join(TEST_ENV.repoRoot, 'test/fixtures/challenges/guarded.yaml'),
    path.join(dir, 'guarded.yaml'),
  )
  symlinkSync(
    path.join(TEST_ENV.repoRoot, 'test/fixtures/challenges/guarded'),
    path.join(dir, 'guarded'),
  )
  symlinkSync(
    path.join(TEST_ENV.repoRoot, 'test/fixtures/challenges/broken.yaml'),
    path.join(dir, 'broken.yaml'),
  )
  proctor = await startProctor({ challengesDir: dir })
})

afterAll(async () => {
  await proctor?.close()
})

/** Pushes the iris baseline, changed by `files`, as a `guarded` submission; waits for its end. */
async function submit(
  name: string,
  files: Record<string, string | { content: string; executable: boolean } | null>,
  challenge = 'guarded',
) {
  const projectPath = `guarded-${suffix}-${name}/${challenge}`
  const project = await createProject(projectPath, 'examples/participants/iris')
  await project.commit({ 'crowdai.json': `{"challenge_id": "${challenge}"}`, ...files }, name)
  const push = await project.pushTag('v1')
  const hook = await proctor.postGitlabHook(
    gitlabTagPush({
      projectId: projectId++,
      projectPath,
      tag: 'v1',
      after: push.after,
      checkoutSha: push.commitSha,
    }),
  )
  expect(hook.status).toBe(202)
  return proctor.waitForSubmission(
    await proctor.waitForEventSubmission(hook.body.eventId as number),
  )
}

describe('secrets and failures through the whole path', () => {
  it('gives the grader its secret and keeps every form of it out of logs and answers', async () => {
    const submission = await submit('ok', {})
    expect(submission.state, submission.statusDetail).toBe('scored')
    expect(submission.score).toBeGreaterThan(0.8)

    const logs = await proctor.api<{ logs: { stage: string; text: string }[] }>(
      `/api/submissions/${submission.id}/logs`,
    )
    const grader = logs.body.logs.find((l) => l.stage === 'score')
    expect(grader?.text).toMatch(/plain: \[redacted\]/)
    expect(grader?.text).toMatch(/hex: \[redacted\]/)
    const everything = JSON.stringify(logs.body) + JSON.stringify(submission)
    expect(everything).not.toContain(SECRET)
    expect(everything).not.toContain(Buffer.from(SECRET).toString('hex'))
    expect(everything).not.toContain(Buffer.from(`x${SECRET}`).toString('base64').slice(4, 20))

    // The grader's progress line reached the timeline; a participant's would not be read.
    expect(
      submission.timeline.some(
        (e) => e.kind === 'progress' && /score: 50% halfway/.test(e.message),
      ),
    ).toBe(true)
  })

  it('fails entrypoint_missing before the clock starts when run.sh is not in the image', async () => {
    const submission = await submit('no-entry', { 'run.sh': null })
    expect(submission.state).toBe('failed')
    expect(submission.reason?.code).toBe('entrypoint_missing')
    expect(submission.reason?.message).toMatch(
      /\.\/run\.sh was not found in your image \(looked for \/home\/participant\/app\/run\.sh/,
    )
    const stages = submission.evaluations[0]?.stages.map((s) => s.stage)
    expect(stages).not.toContain('predict')
  })

  it("fails output_invalid with the grader's message when the predictions miss ids", async () => {
    const submission = await submit('short', {
      'run.sh': {
        content: '#!/bin/sh\nprintf "id,label\\n0,0\\n" > "$PROCTOR_OUTPUT/predictions.csv"\n',
        executable: true,
      },
    })
    expect(submission.state).toBe('failed')
    expect(submission.reason?.code).toBe('output_invalid')
    expect(submission.reason?.message).toMatch(/expected 50 ids, got 1/)
  })

  it('fails crashed with the exit code when the program exits non-zero', async () => {
    const submission = await submit('crash', {
      'run.sh': { content: '#!/bin/sh\necho oops >&2\nexit 3\n', executable: true },
    })
    expect(submission.state).toBe('failed')
    expect(submission.reason?.code).toBe('crashed')
    expect(submission.reason?.message).toMatch(/code 3/)
  })

  it('ends a submission failed (infrastructure) when its intake job runs out of attempts', async () => {
    const submission = await submit('broken', {}, 'broken')
    expect(submission.state).toBe('failed')
    expect(submission.reason?.code).toBe('infrastructure')
    expect(submission.reason?.message).toMatch(/could not take the submission in/)
  })
})
