import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, chmodSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { TEST_ENV } from '../support/env.ts'
import { createProject } from '../support/git-server.ts'
import { assertServicesUp } from '../support/services.ts'
import { gitlabTagPush, startProctor, type Harness } from '../support/proctor-harness.ts'

const run = promisify(execFile)
const IRIS = path.join(TEST_ENV.repoRoot, 'examples/challenges/iris/data')

/** Reads `id,label` CSV into a map. */
function readLabels(text: string): Map<string, string> {
  const rows = text.trim().split('\n').slice(1)
  return new Map(rows.map((row) => row.split(',') as [string, string]))
}

/** Accuracy of predictions against the hidden labels, computed here, not by the grader. */
function accuracy(predictions: Map<string, string>, labels: Map<string, string>): number {
  let correct = 0
  for (const [id, label] of labels) if (predictions.get(id) === label) correct++
  return correct / labels.size
}

/** Runs the archived image by hand, outside proctor, and returns its predictions. */
async function predictWithImage(reference: string): Promise<Map<string, string>> {
  const out = mkdtempSync(path.join(os.tmpdir(), 'proctor-e2e-out-'))
  chmodSync(out, 0o777)
  try {
    await run('docker', [
      'run',
      '--rm',
      '--network',
      'none',
      '--user',
      '1000:1000',
      '-v',
      `${IRIS}/inputs:/proctor/input:ro`,
      '-v',
      `${out}:/proctor/output`,
      '-e',
      'PROCTOR_INPUT=/proctor/input',
      '-e',
      'PROCTOR_OUTPUT=/proctor/output',
      reference,
      './run.sh',
    ])
    return readLabels(readFileSync(path.join(out, 'predictions.csv'), 'utf8'))
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
}

const suffix = Date.now().toString(36)
let proctor: Harness
/** The first scored submission, re-run below. */
let baseline: { id: number; score: number; reference: string } | undefined

beforeAll(async () => {
  await assertServicesUp()
  proctor = await startProctor()
})

afterAll(async () => {
  await proctor?.close()
})

describe('a tag push becomes a scored, archived submission', () => {
  const projectPath = `e2e-${suffix}/iris`
  const labels = readLabels(readFileSync(path.join(IRIS, 'labels/labels.csv'), 'utf8'))

  it('scores the baseline with the accuracy its own predictions have, and archives its image', async () => {
    const project = await createProject(projectPath, 'examples/participants/iris', {
      author: { name: 'alice', email: 'alice@example.test' },
    })
    const push = await project.pushTag('submission-1', { annotated: true })

    const hook = await proctor.postGitlabHook(
      gitlabTagPush({
        projectId: 9001,
        projectPath,
        tag: 'submission-1',
        after: push.after,
        checkoutSha: push.commitSha,
      }),
    )
    expect(hook.status).toBe(202)
    const submissionId = await proctor.waitForEventSubmission(hook.body.eventId as number)
    const submission = await proctor.waitForSubmission(submissionId)

    expect(submission.state, submission.statusDetail).toBe('scored')
    const states = submission.timeline.filter((e) => e.kind === 'state').map((e) => e.state)
    expect(states).toEqual(['received', 'queued', 'building', 'evaluating', 'scored'])
    expect(submission.evaluations[0]?.stages.map((s) => s.stage)).toEqual([
      'fetch',
      'build',
      'push',
      'predict',
      'score',
    ])

    // The image proctor archived, run by hand, predicts; the accuracy is computed here.
    expect(submission.image.archive).toBe('archived')
    expect(submission.image.reference).toMatch(/^127\.0\.0\.1:5000\/.+@sha256:[0-9a-f]{64}$/)
    const expected = accuracy(await predictWithImage(submission.image.reference ?? ''), labels)
    expect(expected).toBeGreaterThan(0.8)
    expect(submission.score).toBeCloseTo(expected, 10)
    baseline = {
      id: submissionId,
      score: submission.score ?? NaN,
      reference: submission.image.reference ?? '',
    }

    // The registry serves the recorded digest.
    const [, repository] = /^[^/]+\/(.+)@/.exec(submission.image.reference ?? '') ?? []
    const head = await fetch(
      `http://${TEST_ENV.registryAddress}/v2/${repository}/manifests/${submission.image.digest}`,
      {
        method: 'HEAD',
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      },
    )
    expect(head.status).toBe(200)
    expect(head.headers.get('docker-content-digest')).toBe(submission.image.digest)

    // A second submission predicting class 0 everywhere scores the share of 0s in the labels.
    await project.commit(
      {
        'run.sh': {
          content:
            '#!/bin/sh\nset -eu\n{ echo id,label; tail -n +2 "$PROCTOR_INPUT/test.csv" | cut -d, -f1 | sed "s/$/,0/"; } > "$PROCTOR_OUTPUT/predictions.csv"\n',
          executable: true,
        },
      },
      'predict setosa everywhere',
    )
    const push2 = await project.pushTag('submission-2')
    const hook2 = await proctor.postGitlabHook(
      gitlabTagPush({
        projectId: 9001,
        projectPath,
        tag: 'submission-2',
        after: push2.after,
        checkoutSha: push2.commitSha,
      }),
    )
    expect(hook2.status).toBe(202)
    const second = await proctor.waitForSubmission(
      await proctor.waitForEventSubmission(hook2.body.eventId as number),
    )
    const zeros = [...labels.values()].filter((l) => l === '0').length / labels.size
    expect(second.state, second.statusDetail).toBe('scored')
    expect(second.score).toBeCloseTo(zeros, 10)
    expect(second.score).toBeLessThan(submission.score ?? 0)
  })
})

describe('bad input gets a clear error and changes nothing', () => {
  async function counts() {
    const db = proctor.app.ctx.store.db
    const [events, submissions, jobs] = await Promise.all([
      db
        .selectFrom('hook_events')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow(),
      db
        .selectFrom('submissions')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow(),
      db
        .selectFrom('jobs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow(),
    ])
    return { events: Number(events.n), submissions: Number(submissions.n), jobs: Number(jobs.n) }
  }
  const body = gitlabTagPush({
    projectId: 9100,
    projectPath: `e2e-${suffix}/nothing`,
    tag: 'v1',
    after: 'a'.repeat(40),
    checkoutSha: 'a'.repeat(40),
  })

  it('refuses a wrong or missing token with 401 and stores nothing', async () => {
    const before = await counts()
    expect((await proctor.postGitlabHook(body, { 'x-gitlab-token': 'wrong' })).status).toBe(401)
    expect((await proctor.postGitlabHook(body, { 'x-gitlab-token': undefined })).status).toBe(401)
    expect(await counts()).toEqual(before)
  })

  it('answers 400 with a message for a body that is not JSON or misses fields, and stores nothing', async () => {
    const before = await counts()
    const notJson = await proctor.postGitlabHook('{"object_kind": "tag_push",')
    expect(notJson.status).toBe(400)
    expect(notJson.body.message).toEqual(expect.any(String))
    const { checkout_sha: _c, project: _p, project_id: _i, ...missing } = body
    const noFields = await proctor.postGitlabHook(missing)
    expect(noFields.status).toBe(400)
    expect(String(noFields.body.message)).toMatch(/project/)
    expect(await counts()).toEqual(before)
  })

  it('answers 2xx to a branch push and a tag deletion and creates no submission', async () => {
    const before = await counts()
    const branch = await proctor.postGitlabHook({
      ...body,
      object_kind: 'push',
      event_name: 'push',
      ref: 'refs/heads/main',
    })
    const deletion = await proctor.postGitlabHook({
      ...body,
      after: '0'.repeat(40),
      checkout_sha: null,
    })
    expect(branch.status).toBe(200)
    expect(branch.body.status).toBe('ignored')
    expect(deletion.status).toBe(200)
    expect(deletion.body.status).toBe('ignored')
    const after = await counts()
    expect(after.submissions).toBe(before.submissions)
    expect(after.jobs).toBe(before.jobs)
  })

  it.each([
    ['manifest_missing', { 'crowdai.json': null }, /crowdai\.json not found/],
    ['manifest_invalid', { 'crowdai.json': "{'challenge_id': 'iris'}" }, /line 1/],
    [
      'challenge_unknown',
      { 'crowdai.json': '{"challenge_id": "no-such-challenge"}' },
      /no-such-challenge/,
    ],
  ])(
    'rejects a submission with %s and a message the participant can act on',
    async (code, change, message) => {
      const projectPath = `e2e-${suffix}-${code.replace('_', '-')}/iris`
      const project = await createProject(projectPath, 'examples/participants/iris', {
        author: { name: 'alice', email: 'alice@example.test' },
      })
      await project.commit(change as Record<string, string | null>, 'break the manifest')
      const push = await project.pushTag('v1')
      const hook = await proctor.postGitlabHook(
        gitlabTagPush({
          projectId: 9200 + code.length,
          projectPath,
          tag: 'v1',
          after: push.after,
          checkoutSha: push.commitSha,
        }),
      )
      expect(hook.status).toBe(202)
      const submission = await proctor.waitForSubmission(
        await proctor.waitForEventSubmission(hook.body.eventId as number),
        { timeoutMs: 60_000 },
      )
      expect(submission.state).toBe('rejected')
      expect(submission.reason?.code).toBe(code)
      expect(submission.reason?.message).toMatch(message)
    },
  )
})

describe('the build cache', () => {
  it('evaluates a new tag on an already archived commit without building, reusing the image', async () => {
    if (!baseline) throw new Error('the baseline submission did not score; see the first test')
    const projectPath = `e2e-${suffix}/iris`
    const { body: first } = await proctor.api<{ commit: string; image: { reference: string } }>(
      `/api/submissions/${baseline.id}`,
    )
    const hook = await proctor.postGitlabHook(
      gitlabTagPush({
        projectId: 9001,
        projectPath,
        tag: 'submission-1-again',
        after: first.commit,
        checkoutSha: first.commit,
      }),
    )
    expect(hook.status).toBe(202)
    const again = await proctor.waitForSubmission(
      await proctor.waitForEventSubmission(hook.body.eventId as number),
    )

    expect(again.state, again.statusDetail).toBe('scored')
    expect(again.score).toBe(baseline.score)
    expect(again.image.reusedFrom).toBe(baseline.id)
    expect(again.image.reference).toBe(first.image.reference)
    expect(again.evaluations[0]?.stages.map((s) => s.stage)).toEqual(['predict', 'score'])
    const states = again.timeline.filter((e) => e.kind === 'state').map((e) => e.state)
    expect(states).toEqual(['received', 'queued', 'evaluating', 'scored'])
  })
})

describe('re-runs', () => {
  it('re-runs an archived submission from the registry after its local image is gone, with the same score', async () => {
    if (!baseline) throw new Error('the baseline submission did not score; see the first test')
    const { stdout } = await run('docker', [
      'image',
      'inspect',
      '--format',
      '{{.Id}}',
      baseline.reference,
    ])
    await run('docker', ['rmi', '--force', stdout.trim()])
    await expect(run('docker', ['image', 'inspect', baseline.reference])).rejects.toThrow()

    const response = await fetch(`${proctor.address}/api/submissions/${baseline.id}/rerun`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer test-api-token-0123456789',
        'content-type': 'application/json',
      },
      body: '{}',
    })
    expect(response.status).toBe(202)
    const created = (await response.json()) as { evaluationId: number; number: number }
    expect(created.number).toBe(2)

    const deadline = Date.now() + 120_000
    let evaluation:
      | { number: number; state: string; score: number | null; stages: { stage: string }[] }
      | undefined
    while (Date.now() < deadline) {
      const { body } = await proctor.api<{
        state: string
        score: number
        evaluations: NonNullable<typeof evaluation>[]
      }>(`/api/submissions/${baseline.id}`)
      evaluation = body.evaluations.find((e) => e.number === 2)
      if (evaluation && ['scored', 'failed'].includes(evaluation.state)) {
        expect(body.state).toBe('scored')
        expect(body.score).toBe(baseline.score)
        break
      }
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    expect(evaluation?.state).toBe('scored')
    expect(evaluation?.score).toBe(baseline.score)
    expect(evaluation?.stages.map((s) => s.stage)).toEqual(['pull', 'predict', 'score'])
  })
})
