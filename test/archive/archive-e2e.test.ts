import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { diskUsage } from '../../src/archive/disk-usage.ts'
import type { StorageReport } from '../../src/archive/accounting.ts'
import type { VerificationRecord } from '../../src/archive/verify.ts'
import { pushImage } from '../../src/build/registry.ts'
import { TEST_ENV } from '../support/env.ts'
import { createProject } from '../support/git-server.ts'
import { API_TOKEN, gitlabTagPush, startProctor, type Harness } from '../support/proctor-harness.ts'
import { assertServicesUp } from '../support/services.ts'
import { docker, removeImages } from './support/archive-context.ts'
import { startTestRegistry, type TestRegistry } from './support/test-registry.ts'

const run = promisify(execFile)
const CLI = path.join(TEST_ENV.repoRoot, 'test/archive/support/archive-cli.ts')
const SLOW = 300_000
const suffix = Date.now().toString(36)
const names = new Set<string>()

let registry: TestRegistry
let proctor: Harness
let scored: { id: number; score: number; reference: string; digest: string }

/** Runs the archive's commands as a subprocess against the harness's API. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', CLI, ...args, '--api-url', proctor.address, '--token', API_TOKEN],
      {
        cwd: TEST_ENV.repoRoot,
        maxBuffer: 16 * 1024 * 1024,
      },
    )
    return { code: 0, stdout, stderr }
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string }
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' }
  }
}

async function post<T>(p: string, body: unknown = {}): Promise<{ status: number; body: T }> {
  const response = await fetch(`${proctor.address}${p}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: response.status, body: (await response.json()) as T }
}

async function waitForVerification(id: number): Promise<VerificationRecord> {
  const deadline = Date.now() + SLOW
  while (Date.now() < deadline) {
    const { body } = await proctor.api<VerificationRecord>(`/api/verifications/${id}`)
    if (body.finishedAt) return body
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  throw new Error(`verification ${id} did not finish`)
}

async function waitForEvaluation(submissionId: number, number: number) {
  const deadline = Date.now() + SLOW
  while (Date.now() < deadline) {
    const { body } = await proctor.api<{
      evaluations: { id?: number; number: number; state: string; score: number | null }[]
    }>(`/api/submissions/${submissionId}`)
    const found = body.evaluations.find((e) => e.number === number)
    if (found && ['scored', 'failed', 'cancelled'].includes(found.state)) return found
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
  throw new Error(`evaluation ${number} of submission ${submissionId} did not finish`)
}

beforeAll(async () => {
  await assertServicesUp(['docker', 'git', 'images'])
  registry = await startTestRegistry()
  proctor = await startProctor({
    registry: { address: registry.address, namespace: 'proctor-archive' },
  })

  const projectPath = `archive-${suffix}/iris`
  const project = await createProject(projectPath, 'examples/participants/iris', {
    author: { name: 'alice', email: 'alice@example.test' },
  })
  const push = await project.pushTag('submission-1')
  const hook = await proctor.postGitlabHook(
    gitlabTagPush({
      projectId: 9700,
      projectPath,
      tag: 'submission-1',
      after: push.after,
      checkoutSha: push.commitSha,
    }),
  )
  const submission = await proctor.waitForSubmission(
    await proctor.waitForEventSubmission(hook.body.eventId as number),
  )
  if (submission.state !== 'scored')
    throw new Error(`the submission did not score: ${submission.statusDetail}`)
  scored = {
    id: submission.id,
    score: submission.score ?? NaN,
    reference: submission.image.reference ?? '',
    digest: submission.image.digest ?? '',
  }
  names.add(scored.reference)
}, SLOW)

afterAll(async () => {
  await proctor?.close()
  // The worker's local tags and the registry's: this run's registry port and project are its own.
  const tags = (await docker.listImages()).flatMap((image) => image.RepoTags ?? [])
  for (const tag of tags) {
    if (
      tag.startsWith(`${registry?.address}/`) ||
      tag.startsWith(`proctor-build/iris/archive-${suffix}/`)
    )
      names.add(tag)
  }
  await removeImages(names)
  await registry?.stop()
})

describe('proctor storage', () => {
  it('prints what the archive holds, equal to the blob bytes on the registry’s disk', async () => {
    const result = await cli('storage', '--json')
    expect(result.code, result.stderr).toBe(0)
    const report = JSON.parse(result.stdout) as StorageReport

    // This registry holds the grader image and the submission's image, nothing else.
    expect(report.total.bytes).toBe((await diskUsage(registry.blobsDir)).fileBytes)
    expect(report.challenges).toMatchObject([
      { challengeId: 'iris', images: 1, participants: [{ participant: 'alice', images: 1 }] },
    ])
    expect(report.graders.images).toBe(1)
    // The participant's image is built on the same base as the grader: it is counted once.
    expect(report.total.unsharedBytes).toBeGreaterThan(report.total.bytes)

    const table = await cli('storage')
    expect(table.stdout).toMatch(/challenge iris\s+1\s/)
  })
})

describe('proctor verify', () => {
  it(
    'reports identical for an unchanged rebuild whose layer digests differ from the archive’s',
    async () => {
      const result = await cli('verify', String(scored.id), '--json')
      const record = JSON.parse(result.stdout) as VerificationRecord
      expect(result.code, record.summary?.error ?? result.stderr).toBe(0)

      const s = record.summary
      const archived = s?.archive?.layers.map((l) => l.diffId) ?? []
      const rebuilt = s?.rebuild?.layers.map((l) => l.diffId) ?? []
      console.log(
        `archive layers: ${archived.join(' ')}\nrebuild layers: ${rebuilt.join(' ')}\nregistry layers: ${s?.archive?.registryLayers.join(' ')}`,
      )
      expect(record.outcome).toBe('identical')
      expect(s).toMatchObject({
        builder: 'repo2docker',
        builderVersion: '2024.07.0',
        layerDigestsDiffer: true,
        error: null,
      })
      // The base layer is the same image; the layers built from the commit were built anew.
      expect(rebuilt[0]).toBe(archived[0])
      expect(rebuilt.at(-1)).not.toBe(archived.at(-1))
      expect(s?.comparison).toMatchObject({ identical: true, differenceCount: 0 })
      expect(s?.rebuild?.baseImage?.name).toBe(TEST_ENV.pythonImage)
      expect(s?.comparison?.compared).toBeGreaterThan(1000)
      expect(s?.comparison?.mtimeOnly).toBeGreaterThan(0)

      // The rebuild is removed; the archived image is untouched.
      await expect(docker.getImage(s?.rebuild?.imageId ?? 'none').inspect()).rejects.toMatchObject({
        statusCode: 404,
      })
    },
    SLOW,
  )

  it(
    'names the changed file when a base-layer file (/etc/passwd) is tampered with in the archive',
    async () => {
      // A tampered copy of the archived image, pushed to its repository and recorded in its place.
      const container = await docker.createContainer({
        Image: scored.reference,
        User: '0',
        Cmd: ['sh', '-c', 'echo intruder:x:0:0::/root:/bin/sh >> /etc/passwd'],
      })
      await container.start()
      await container.wait()
      const committed = (await container.commit()) as { Id: string }
      await container.remove()
      const repository = /^[^/]+\/(.+)@/.exec(scored.reference)?.[1] ?? ''
      names.add(`${registry.address}/${repository}:tampered`)
      const tampered = await pushImage(docker, {
        imageId: committed.Id,
        registry: registry.address,
        repository,
        tag: 'tampered',
      })
      const db = proctor.app.ctx.store.db
      await db
        .updateTable('submissions')
        .set({ image_ref: tampered.reference, image_digest: tampered.digest })
        .where('id', '=', scored.id)
        .execute()

      try {
        const started = await post<{ verificationId: number }>(
          `/api/submissions/${scored.id}/verify`,
        )
        expect(started.status).toBe(202)
        const record = await waitForVerification(started.body.verificationId)

        expect(record.outcome, record.summary?.error ?? '').toBe('different')
        const differences = record.summary?.comparison?.differences ?? []
        console.log(
          `differences: ${differences.map((d) => `${d.kind} ${d.path} [${d.fields.join(',')}] archive layer ${d.archive?.layer} rebuild layer ${d.rebuild?.layer}`).join('; ')}`,
        )
        const archiveLayers = record.summary?.archive?.layers.length ?? 0
        // Only the tampered file differs, traced to the tamper's layer and the base layer.
        expect(differences.map((d) => [d.kind, d.path, d.fields])).toEqual([
          ['changed', '/etc/passwd', ['content']],
        ])
        expect(differences[0]?.archive?.layer).toBe(archiveLayers - 1)
        expect(differences[0]?.rebuild?.layer).toBe(0)
        expect(record.summary?.comparison?.differenceCount).toBe(differences.length)
        const timeline = await proctor.api<{ timeline: { message: string }[] }>(
          `/api/submissions/${scored.id}`,
        )
        expect(timeline.body.timeline.map((e) => e.message)).toContainEqual(
          expect.stringMatching(/differs from the archive in 1 path \(changed \/etc\/passwd\)/),
        )
      } finally {
        await db
          .updateTable('submissions')
          .set({ image_ref: scored.reference, image_digest: scored.digest })
          .where('id', '=', scored.id)
          .execute()
        names.add(committed.Id)
      }
    },
    SLOW,
  )
})

describe('re-runs: current rules, publishing, batches', () => {
  it(
    're-runs with the current rules (proctor rerun --current-rules --wait) and gets the same score',
    async () => {
      const result = await cli('rerun', String(scored.id), '--current-rules', '--wait', '--json')
      expect(result.code, result.stderr).toBe(0)
      expect(JSON.parse(result.stdout)).toMatchObject({
        submissionId: scored.id,
        number: 2,
        state: 'scored',
        score: scored.score,
      })
      const evaluation = await proctor.app.ctx.store.db
        .selectFrom('evaluations')
        .selectAll()
        .where('submission_id', '=', scored.id)
        .where('number', '=', 2)
        .executeTakeFirstOrThrow()
      expect(evaluation).toMatchObject({ kind: 'rerun', rules: 'current', published: 0 })
      expect(evaluation.challenge_snapshot_json).toContain('"id":"iris"')
    },
    SLOW,
  )

  it('publishes a finished re-run once, records it on the timeline, and refuses a first evaluation', async () => {
    const db = proctor.app.ctx.store.db
    const [first, rerun] = await db
      .selectFrom('evaluations')
      .select(['id', 'number'])
      .where('submission_id', '=', scored.id)
      .orderBy('number')
      .execute()

    const published = await post<{ alreadyPublished: boolean; number: number }>(
      `/api/evaluations/${rerun?.id}/publish`,
    )
    const again = await post<{ alreadyPublished: boolean }>(`/api/evaluations/${rerun?.id}/publish`)
    const refused = await post<{ error: string }>(`/api/evaluations/${first?.id}/publish`)

    expect(published).toMatchObject({ status: 200, body: { alreadyPublished: false, number: 2 } })
    expect(again).toMatchObject({ status: 200, body: { alreadyPublished: true } })
    expect(refused).toMatchObject({ status: 409, body: { error: 'not_a_rerun' } })
    expect(
      (
        await db
          .selectFrom('evaluations')
          .select('published')
          .where('id', '=', rerun?.id ?? 0)
          .executeTakeFirstOrThrow()
      ).published,
    ).toBe(1)
    const notes = await db
      .selectFrom('submission_events')
      .select('message')
      .where('evaluation_id', '=', rerun?.id ?? 0)
      .execute()
    expect(notes.map((n) => n.message)).toContainEqual(expect.stringMatching(/published by test/))
  })

  it(
    're-runs a filtered set behind new work: only the participant named',
    async () => {
      const none = await post<{ reruns: unknown[] }>('/api/reruns', {
        challenge: 'iris',
        participant: 'bob',
      })
      const alice = await post<{
        reruns: { submissionId: number; number: number; jobId: number }[]
      }>('/api/reruns', {
        challenge: 'iris',
        participant: 'alice',
        createdAfter: '2020-01-01T00:00:00Z',
      })

      expect(none).toMatchObject({ status: 202, body: { reruns: [] } })
      expect(alice.status).toBe(202)
      expect(alice.body.reruns.map((r) => r.submissionId)).toEqual([scored.id])
      const job = await proctor.app.ctx.store.db
        .selectFrom('jobs')
        .select('priority')
        .where('id', '=', alice.body.reruns[0]?.jobId ?? 0)
        .executeTakeFirstOrThrow()
      expect(job.priority).toBeLessThan(0)
      expect((await waitForEvaluation(scored.id, 3)).score).toBe(scored.score)
    },
    SLOW,
  )

  it('refuses to re-run or verify once retention expired the image', async () => {
    const db = proctor.app.ctx.store.db
    await db
      .updateTable('submissions')
      .set({ archive: 'expired' })
      .where('id', '=', scored.id)
      .execute()
    try {
      const rerun = await post<{ error: string; message: string }>(
        `/api/submissions/${scored.id}/rerun`,
      )
      const verify = await post<{ error: string }>(`/api/submissions/${scored.id}/verify`)
      expect(rerun).toMatchObject({ status: 409, body: { error: 'not_archived' } })
      expect(rerun.body.message).toMatch(/expired/)
      expect(verify).toMatchObject({ status: 409, body: { error: 'not_archived' } })
    } finally {
      await db
        .updateTable('submissions')
        .set({ archive: 'archived' })
        .where('id', '=', scored.id)
        .execute()
    }
  })
})
