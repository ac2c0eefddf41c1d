import { writeFileSync } from 'node:fs'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { noteSubmission } from '../../src/submissions/transitions.ts'
import { eventually, move } from '../dashboard/support/fixtures.ts'
import { createProject, type GitProject } from '../support/git-server.ts'
import { assertServicesUp } from '../support/services.ts'
import { API_TOKEN, startProctor, type Harness } from '../support/proctor-harness.ts'
import { runCli, startCli } from './support/run-cli.ts'

let proctor: Harness
let project: GitProject
let env: Record<string, string>
const projectPath = `cli-${Date.now().toString(36)}/iris`

/** Submits a tag through the CLI and waits for intake to make it a queued submission. */
async function submitQueued(tag: string): Promise<number> {
  await project.pushTag(tag)
  const result = await runCli(
    ['submit', 'gitlab', projectPath, tag, '--as', 'alice', '--json'],
    env,
  )
  expect(result.code, result.stderr).toBe(0)
  const { eventId } = JSON.parse(result.stdout) as { eventId: number }
  const id = await proctor.waitForEventSubmission(eventId)
  await proctor.waitForSubmission(id, { states: ['queued'], timeoutMs: 60_000 })
  return id
}

beforeAll(async () => {
  await assertServicesUp()
  // A worker for intake only: submissions stop at `queued`, and the tests move them on.
  proctor = await startProctor({
    worker: { slots: 1, queues: ['intake'], capabilities: [], leaseSeconds: 30, maxAttempts: 3 },
  })
  env = { PROCTOR_API_URL: proctor.address, PROCTOR_API_TOKEN: API_TOKEN }
  project = await createProject(projectPath, 'examples/participants/iris', {
    author: { name: 'alice', email: 'alice@example.test' },
  })
})

afterAll(async () => {
  await proctor?.close()
})

describe('proctor submit', () => {
  it('submits an existing tag through intake and says what it stored', async () => {
    await project.pushTag('v1')
    const result = await runCli(['submit', 'gitlab', projectPath, 'v1', '--as', 'alice'], env)
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/^accepted: hook event \d+, commit [0-9a-f]{12}\n$/)

    const again = await runCli(
      ['submit', 'gitlab', projectPath, 'v1', '--as', 'alice', '--json'],
      env,
    )
    expect(again.code).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({ status: 'duplicate' })
  })

  it('exits 1 for a tag the forge does not have', async () => {
    const result = await runCli(
      ['submit', 'gitlab', projectPath, 'no-such-tag', '--as', 'alice'],
      env,
    )
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/tag no-such-tag does not exist/)
  })
})

describe('reading', () => {
  it('lists submissions and shows one, for people and for scripts', async () => {
    const id = await submitQueued('list-1')
    const list = await runCli(
      ['submissions', 'list', '--challenge', 'iris', '--state', 'queued'],
      env,
    )
    expect(list.code, list.stderr).toBe(0)
    expect(list.stdout).toMatch(/^ID\s+STATE\s+CHALLENGE/)
    expect(list.stdout).toMatch(
      new RegExp(`^${id}\\s+queued\\s+iris\\s+${projectPath}\\s+list-1`, 'm'),
    )

    const json = await runCli(['submissions', 'list', '--json', '--limit', '5'], env)
    const parsed = JSON.parse(json.stdout) as { submissions: { id: number }[] }
    expect(parsed.submissions.map((s) => s.id)).toContain(id)

    const show = await runCli(['submissions', 'show', String(id)], env)
    expect(show.code).toBe(0)
    expect(show.stdout).toMatch(new RegExp(`^submission ${id}  ${projectPath} list-1`))
    expect(show.stdout).toMatch(/timeline\n.*received.*\n.*queued/)
  })

  it('shows queue depth, the oldest waiting job and alerts', async () => {
    const result = await runCli(['status'], env)
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/^QUEUE\s+WAITING\s+RUNNING\s+OLDEST WAITING$/m)
    expect(result.stdout).toMatch(/^iris\s+[1-9]\d*\s+0\s+.+ ago \(/m)
    expect(result.stdout).toMatch(/no alerts|alerts \(\d+\)/)
    const json = JSON.parse((await runCli(['status', '--json'], env)).stdout) as {
      queues: { queue: string }[]
      alerts: unknown[]
    }
    expect(json.queues.map((q) => q.queue)).toContain('iris')
    expect(Array.isArray(json.alerts)).toBe(true)
  })

  it('lists workers with their queues and last heartbeat', async () => {
    const result = await runCli(['workers'], env)
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/^WORKER\s+STATE\s+RUNNING\s+QUEUES/)
    expect(result.stdout).toMatch(/\salive\s+\d\/1.*\sintake\s/)
  })

  it('exports submissions as CSV', async () => {
    const result = await runCli(['export', 'submissions', '--challenge', 'iris'], env)
    expect(result.code, result.stderr).toBe(0)
    const [header, ...rows] = result.stdout.trim().split('\r\n')
    expect(header).toMatch(/^id,challenge,round,participant,team,project,tag,commit,state,/)
    expect(rows.length).toBeGreaterThan(0)
    expect(rows.every((r) => r.split(',')[1] === 'iris')).toBe(true)
  })
})

describe('actions', () => {
  it('cancels and re-queues with a reason, and the timeline names the actor', async () => {
    const id = await submitQueued('act-1')
    const cancel = await runCli(
      ['cancel', String(id), '--reason', 'duplicate of another push'],
      env,
    )
    expect(cancel.code, cancel.stderr).toBe(0)
    expect(cancel.stdout).toMatch(
      new RegExp(
        `^submission ${id} cancelled \\(was queued; stopped job \\d+ \\(waiting\\); quota unit refunded\\)`,
      ),
    )

    const again = await runCli(['cancel', String(id), '--reason', 'twice'], env)
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/409 .*can no longer be cancelled/)

    const requeue = await runCli(
      ['requeue', String(id), '--reason', 'it was not a duplicate', '--json'],
      env,
    )
    expect(requeue.code, requeue.stderr).toBe(0)
    expect(JSON.parse(requeue.stdout)).toMatchObject({
      submissionId: id,
      from: 'cancelled',
      evaluationNumber: 2,
    })

    const { body } = await proctor.api<{
      state: string
      timeline: { state: string | null; actor: string; message: string }[]
    }>(`/api/submissions/${id}`)
    expect(body.state).toBe('queued')
    const [cancelled, queued] = body.timeline.slice(-2)
    expect(cancelled).toMatchObject({ state: 'cancelled', actor: 'operator:test' })
    expect(cancelled?.message).toMatch(/duplicate of another push/)
    expect(queued).toMatchObject({ state: 'queued', actor: 'operator:test' })
    expect(queued?.message).toMatch(/it was not a duplicate/)
  })
})

describe('proctor submissions follow', () => {
  it('prints the timeline, then each change as it happens, and exits 0 when it scores', async () => {
    const id = await submitQueued('follow-1')
    const follow = startCli(['submissions', 'follow', String(id)], env)
    await eventually(
      () => (/ queued /.test(follow.stdout) ? true : undefined),
      15_000,
      'the replayed timeline',
    )

    const { db } = proctor.app.ctx.store
    await move(db, id, 'building', { message: 'fetching commit' })
    await noteSubmission(db, id, {
      message: 'building the image with repo2docker',
      stage: 'build',
      actor: 'test',
      at: new Date(),
    })
    await move(db, id, 'evaluating', { message: 'running the phases' })
    await noteSubmission(db, id, {
      message: 'score: 50% half the labels',
      kind: 'progress',
      actor: 'test',
      at: new Date(),
    })
    await move(db, id, 'scored', { message: 'scored 0.9600', score: 0.96 })

    const result = await follow.done
    expect(result.code, result.stderr).toBe(0)
    const lines = result.stdout.split('\n')
    expect(lines[0]).toBe(
      `submission ${id}  ${projectPath} follow-1 (${lines[0]?.split('(')[1]?.slice(0, 12)})  challenge iris`,
    )
    const order = [
      'received',
      'queued',
      'building',
      '· build',
      'evaluating',
      '· progress',
      'scored',
    ].map((what) => lines.findIndex((l) => l.includes(` ${what} `)))
    expect(order.every((i) => i > 0)).toBe(true)
    expect(order).toEqual([...order].sort((a, b) => a - b))
    expect(result.stdout).toMatch(/\+\d+(\.\d)? (ms|s)\s+building\s+fetching commit/)
    expect(lines.at(-2)).toBe(`submission ${id} scored 0.96`)
  })

  it('exits 1 when the submission ends without a score, and --json prints one event per line', async () => {
    const id = await submitQueued('follow-2')
    const follow = startCli(['submissions', 'follow', String(id), '--json'], env)
    await eventually(
      () => (follow.stdout.includes('"queued"') ? true : undefined),
      15_000,
      'the replayed timeline',
    )
    const cancel = await runCli(['cancel', String(id), '--reason', 'testing follow'], env)
    expect(cancel.code).toBe(0)

    const result = await follow.done
    expect(result.code).toBe(1)
    const events = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; data: { state?: string } })
    expect(events.map((e) => e.data.state ?? null)).toEqual([
      'received',
      'queued',
      'cancelled',
      'cancelled',
    ])
    expect(events.at(-1)).toMatchObject({ event: 'end', data: { state: 'cancelled' } })
  })
})

describe('exit codes', () => {
  it('exits 3 when the API does not answer', async () => {
    const result = await runCli(['status'], { ...env, PROCTOR_API_URL: 'http://127.0.0.1:9' })
    expect(result.code).toBe(3)
    expect(result.stderr).toMatch(/cannot reach proctor at http:\/\/127\.0\.0\.1:9/)
  })

  it('exits 2 for usage and configuration errors', async () => {
    expect((await runCli(['status'], { PROCTOR_API_URL: proctor.address })).code).toBe(2)
    expect(
      (await runCli(['status'], { ...env, PROCTOR_API_TOKEN: 'not-a-valid-token-at-all' })).code,
    ).toBe(2)
    expect((await runCli(['submissions', 'list', '--no-such-flag'], env)).code).toBe(2)
    expect((await runCli(['cancel', '1'], env)).code).toBe(2)
    const bad = path.join(proctor.dir, 'bad-challenge.yaml')
    writeFileSync(bad, 'id: Not Valid\n')
    expect((await runCli(['challenge', 'validate', bad], env)).code).toBe(2)
  })

  it('exits 1 when proctor refuses the operation, 0 for help', async () => {
    const missing = await runCli(['submissions', 'show', '999999'], env)
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/404/)
    expect((await runCli(['--help'], env)).code).toBe(0)
  })
})
