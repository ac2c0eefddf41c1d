import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createToken } from '../../src/api/auth.ts'
import { TEST_ENV } from '../support/env.ts'
import { API_TOKEN, gitlabTagPush, startProctor, type Harness } from '../support/proctor-harness.ts'
import { insertSubmission, move } from '../dashboard/support/fixtures.ts'
import { parseExposition, valueOf, type Sample } from './support/exposition.ts'

let proctor: Harness

async function scrape(): Promise<Sample[]> {
  const response = await fetch(`${proctor.address}/metrics`, {
    headers: { authorization: `Bearer ${API_TOKEN}` },
  })
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return parseExposition(await response.text()).samples
}

beforeAll(async () => {
  proctor = await startProctor({}, { workerSlots: 0 })
})

afterAll(async () => {
  await proctor?.close()
})

describe('GET /metrics', () => {
  it('needs an operator token', async () => {
    expect((await fetch(`${proctor.address}/metrics`)).status).toBe(401)
    const { token } = await createToken(proctor.app.ctx.store.db, {
      name: 'board',
      scope: 'platform',
    })
    const platform = await fetch(`${proctor.address}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
    })
    expect(platform.status).toBe(403)
  })

  it('declares each metric with its type', async () => {
    const response = await fetch(`${proctor.address}/metrics`, {
      headers: { authorization: `Bearer ${API_TOKEN}` },
    })
    const { types } = parseExposition(await response.text())
    expect(types.get('proctor_hooks_received_total')).toBe('counter')
    expect(types.get('proctor_submissions')).toBe('gauge')
    expect(types.get('proctor_stage_duration_seconds')).toBe('histogram')
    expect(types.get('proctor_submission_failures_total')).toBe('counter')
    expect(types.get('process_cpu_seconds_total')).toBe('counter')
  })

  it('counts hook deliveries by forge and outcome, as they are answered', async () => {
    const path = `metrics-${randomBytes(4).toString('hex')}/iris`
    const body = gitlabTagPush({
      projectId: 4242,
      projectPath: path,
      tag: 'v1',
      after: 'a'.repeat(40),
      checkoutSha: 'a'.repeat(40),
    })
    expect((await proctor.postGitlabHook(body)).status).toBe(202)
    expect((await proctor.postGitlabHook(body)).body.status).toBe('duplicate')
    expect(
      (await proctor.postGitlabHook({ ...body, object_kind: 'push', ref: 'refs/heads/main' })).body
        .status,
    ).toBe('ignored')
    expect((await proctor.postGitlabHook(body, { 'x-gitlab-token': 'wrong' })).status).toBe(401)
    expect((await proctor.postGitlabHook('{"object_kind":')).status).toBe(400)
    const unknown = await fetch(`${proctor.address}/hooks/nowhere`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    })
    expect(unknown.status).toBe(404)

    const samples = await scrape()
    const count = (forge: string, outcome: string) =>
      valueOf(samples, 'proctor_hooks_received_total', { forge, outcome })
    expect(count('gitlab', 'accepted')).toBe(1)
    expect(count('gitlab', 'duplicate')).toBe(1)
    expect(count('gitlab', 'ignored')).toBe(1)
    expect(count('gitlab', 'unauthorized')).toBe(1)
    expect(count('gitlab', 'malformed')).toBe(1)
    expect(count('unknown', 'unknown_forge')).toBe(1)
  })

  it('reports submissions by state, queue depth and the oldest waiting job, read from the store', async () => {
    const { db } = proctor.app.ctx.store
    const queued = await insertSubmission(db, { challengeId: 'digits' })
    await move(db, queued, 'queued')
    const waitedSince = Date.now()
    await proctor.app.ctx.queue.enqueue(db, {
      kind: 'evaluate',
      queue: 'digits',
      submissionId: queued,
      maxAttempts: 3,
    })
    await insertSubmission(db, { challengeId: 'digits' })
    await new Promise((resolve) => setTimeout(resolve, 1_100))

    const samples = await scrape()
    expect(valueOf(samples, 'proctor_submissions', { challenge: 'digits', state: 'queued' })).toBe(
      1,
    )
    expect(
      valueOf(samples, 'proctor_submissions', { challenge: 'digits', state: 'received' }),
    ).toBe(1)
    expect(valueOf(samples, 'proctor_queue_jobs', { queue: 'digits', state: 'waiting' })).toBe(1)
    expect(valueOf(samples, 'proctor_queue_jobs', { queue: 'digits', state: 'running' })).toBe(0)
    const age = valueOf(samples, 'proctor_queue_oldest_waiting_seconds', { queue: 'digits' }) ?? -1
    expect(age).toBeGreaterThanOrEqual(1)
    expect(age).toBeLessThanOrEqual((Date.now() - waitedSince) / 1000 + 1)
  })

  it('counts failures by challenge and reason code from the timeline', async () => {
    const { db } = proctor.app.ctx.store
    const before =
      valueOf(await scrape(), 'proctor_submission_failures_total', {
        challenge: 'iris',
        state: 'failed',
        code: 'build_failed',
      }) ?? 0
    for (let i = 0; i < 2; i++) {
      const id = await insertSubmission(db)
      await move(db, id, 'queued')
      await move(db, id, 'building')
      await move(db, id, 'failed', { reasonCode: 'build_failed' })
    }
    const after = await scrape()
    expect(
      valueOf(after, 'proctor_submission_failures_total', {
        challenge: 'iris',
        state: 'failed',
        code: 'build_failed',
      }),
    ).toBe(before + 2)
  })

  it('builds stage durations from finished stage runs, each counted once', async () => {
    const { db } = proctor.app.ctx.store
    const id = await insertSubmission(db)
    const evaluation = await db
      .insertInto('evaluations')
      .values({
        submission_id: id,
        number: 1,
        kind: 'first',
        state: 'running',
        created_at: new Date().toISOString(),
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const finished = new Date(Date.now() - 60_000).toISOString()
    const run = (stage: string, wallMs: number, at = finished) => ({
      evaluation_id: Number(evaluation.id),
      attempt: 1,
      stage,
      started_at: at,
      finished_at: at,
      outcome: 'ok',
      wall_ms: wallMs,
    })
    await db
      .insertInto('stage_runs')
      .values([run('build', 1_500), run('build', 90_000), run('predict', 4_000)])
      .execute()

    const labels = { challenge: 'iris', stage: 'build', outcome: 'ok' }
    const first = await scrape()
    expect(valueOf(first, 'proctor_stage_duration_seconds_count', labels)).toBe(2)
    expect(valueOf(first, 'proctor_stage_duration_seconds_sum', labels)).toBeCloseTo(91.5, 6)
    expect(valueOf(first, 'proctor_stage_duration_seconds_bucket', { ...labels, le: '5' })).toBe(1)
    expect(valueOf(first, 'proctor_stage_duration_seconds_bucket', { ...labels, le: '120' })).toBe(
      2,
    )

    // A second scrape adds nothing; a stage that finishes later is added once it has settled.
    await db
      .insertInto('stage_runs')
      .values(run('build', 2_000, new Date(Date.now() - 30_000).toISOString()))
      .execute()
    const second = await scrape()
    expect(valueOf(second, 'proctor_stage_duration_seconds_count', labels)).toBe(3)
    const third = await scrape()
    expect(valueOf(third, 'proctor_stage_duration_seconds_count', labels)).toBe(3)
  })

  it('shows the outbox backlog by target, its oldest pending message, and the messages given up', async () => {
    const { db } = proctor.app.ctx.store
    const id = await insertSubmission(db)
    const old = new Date(Date.now() - 120_000).toISOString()
    const message = (state: 'pending' | 'dead') => ({
      target: 'webhook:scores',
      submission_id: id,
      payload_json: '{}',
      state,
      next_attempt_at: old,
      created_at: old,
    })
    await db
      .insertInto('outbox')
      .values([message('pending'), message('pending'), message('dead')])
      .execute()

    const samples = await scrape()
    expect(
      valueOf(samples, 'proctor_outbox_messages', { target: 'webhook:scores', state: 'pending' }),
    ).toBe(2)
    expect(
      valueOf(samples, 'proctor_outbox_messages', { target: 'webhook:scores', state: 'dead' }),
    ).toBe(1)
    expect(
      valueOf(samples, 'proctor_outbox_oldest_pending_seconds', { target: 'webhook:scores' }),
    ).toBeGreaterThanOrEqual(119)
  })

  it('shows workers, their heartbeat age, archived images, free disk and active alerts', async () => {
    const { db } = proctor.app.ctx.store
    const now = new Date()
    await db
      .insertInto('workers')
      .values({
        id: 'gpu-7',
        host: 'gpu-7.example',
        queues_json: '["*"]',
        capabilities_json: '["gpu"]',
        slots: 2,
        state: 'alive',
        started_at: now.toISOString(),
        heartbeat_at: new Date(now.getTime() - 3_600_000).toISOString(),
      })
      .execute()
    const archived = await insertSubmission(db)
    await db
      .updateTable('submissions')
      .set({
        image_ref: `${TEST_ENV.registryAddress}/metrics-test/none@sha256:${'a'.repeat(64)}`,
        archive: 'archived',
      })
      .where('id', '=', archived)
      .execute()

    const samples = await scrape()
    expect(valueOf(samples, 'proctor_workers', { state: 'alive' })).toBe(1)
    expect(
      valueOf(samples, 'proctor_worker_heartbeat_age_seconds', { worker: 'gpu-7' }),
    ).toBeGreaterThanOrEqual(3_599)
    expect(valueOf(samples, 'proctor_archive_images', { state: 'archived' })).toBe(1)
    // The image is not in the registry: nothing known to count, and the scrape still answers.
    expect(valueOf(samples, 'proctor_archive_bytes')).toBe(0)
    expect(valueOf(samples, 'proctor_disk_free_bytes')).toBeGreaterThan(0)
    expect(valueOf(samples, 'proctor_disk_size_bytes')).toBeGreaterThanOrEqual(
      valueOf(samples, 'proctor_disk_free_bytes') ?? 0,
    )
    expect(valueOf(samples, 'proctor_alerts_active', { kind: 'worker_lost' })).toBe(1)
    expect(valueOf(samples, 'proctor_alerts_active', { kind: 'outbox_dead' })).toBe(1)
    expect(valueOf(samples, 'proctor_alerts_active', { kind: 'disk_low' })).toBeGreaterThanOrEqual(
      0,
    )
  })

  it('serves every metric the example alert rules use', async () => {
    const rules = readFileSync(
      path.join(TEST_ENV.repoRoot, 'docs/alerts/prometheus-rules.yaml'),
      'utf8',
    )
    const used = new Set(rules.match(/proctor_[a-z_]+/g))
    const served = new Set((await scrape()).map((s) => s.name))
    expect([...used].filter((name) => !served.has(name))).toEqual([])
  })
})
