import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import pino from 'pino'

import { createApp, type App } from '../../src/app/create-app.ts'
import { parseConfig, type ProctorConfig } from '../../src/config/proctor-config.ts'
import type { SubmissionState } from '../../src/domain/states.ts'
import { TEST_ENV } from './env.ts'

export const HOOK_SECRET = 'test-secret'
export const API_TOKEN = 'test-api-token-0123456789'

export interface Harness {
  app: App
  config: ProctorConfig
  address: string
  dir: string
  /** GET an API path with the operator token. */
  api<T>(p: string): Promise<{ status: number; body: T }>
  /** POST a GitLab hook body with the right headers (override any of them). */
  postGitlabHook(body: unknown, headers?: Record<string, string | undefined>): Promise<{ status: number; body: Record<string, unknown> }>
  /** Polls until the submission reaches a terminal state (or any of `states`). */
  waitForSubmission(id: number, options?: { states?: SubmissionState[]; timeoutMs?: number }): Promise<SubmissionBody>
  /** Polls until the hook event has a submission, and returns its id. */
  waitForEventSubmission(eventId: number, timeoutMs?: number): Promise<number>
  close(): Promise<void>
}

export interface SubmissionBody {
  id: number
  state: SubmissionState
  reason: { code: string; message: string } | null
  statusDetail: string
  score: number | null
  image: { reference: string | null; digest: string | null; archive: string; reusedFrom: number | null }
  timeline: { kind: string; state: string | null; message: string; reasonCode: string | null }[]
  evaluations: { stages: { stage: string; outcome: string | null; wallMs: number | null }[] }[]
  [key: string]: unknown
}

const TERMINAL = ['scored', 'failed', 'rejected', 'cancelled']

/**
 * A real proctor (API + worker) on a fresh SQLite file, listening on an ephemeral port,
 * with the example challenges and participant directory, and a GitLab forge whose clone URL
 * points at the loopback git daemon.
 */
export async function startProctor(overrides: Partial<ProctorConfig> = {}, options: { workerSlots?: number } = {}): Promise<Harness> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'proctor-test-'))
  const participants = path.join(dir, 'participants.yaml')
  writeFileSync(
    participants,
    [
      'participants:',
      '  - { username: alice, team: wonderland, identities: [{ forge: gitlab, userId: "42", username: alice }] }',
      '  - { username: bob, identities: [{ forge: gitlab, userId: "43", username: bob }] }',
      '',
    ].join('\n'),
  )
  const config = parseConfig(
    {
      server: { host: '127.0.0.1', port: 0 },
      database: { url: `sqlite:${path.join(dir, 'proctor.db')}` },
      challengesDir: path.join(TEST_ENV.repoRoot, 'examples/challenges'),
      participantsFile: participants,
      forges: [
        {
          id: 'gitlab',
          kind: 'gitlab',
          baseUrl: 'https://gitlab.example.test',
          cloneUrl: `git://127.0.0.1:${TEST_ENV.gitPort}/{path}.git`,
          hookSecrets: [HOOK_SECRET],
        },
      ],
      registry: { address: TEST_ENV.registryAddress, namespace: 'proctor-test' },
      builder: { repo2docker: path.join(TEST_ENV.repoRoot, '.venv/bin/repo2docker'), workDir: path.join(dir, 'work') },
      api: { tokens: [{ name: 'test', token: API_TOKEN, scope: 'operator' }] },
      worker: { slots: 1, leaseSeconds: 30 },
      ...overrides,
    },
    { env: {} },
  )
  const log = pino({ level: process.env.PROCTOR_TEST_LOG ?? 'silent' })
  const app = await createApp(config, { log, workerSlots: options.workerSlots })
  const address = (await app.start()) ?? ''

  const harness: Harness = {
    app,
    config,
    address,
    dir,
    async api<T>(p: string) {
      const response = await fetch(`${address}${p}`, { headers: { authorization: `Bearer ${API_TOKEN}` } })
      return { status: response.status, body: (await response.json()) as T }
    },
    async postGitlabHook(body, headers = {}) {
      const merged: Record<string, string | undefined> = {
        'content-type': 'application/json',
        'x-gitlab-event': 'System Hook',
        'x-gitlab-token': HOOK_SECRET,
        'idempotency-key': randomBytes(16).toString('hex'),
        ...headers,
      }
      const response = await fetch(`${address}/hooks/gitlab`, {
        method: 'POST',
        headers: Object.fromEntries(Object.entries(merged).filter((e): e is [string, string] => e[1] !== undefined)),
        body: typeof body === 'string' ? body : JSON.stringify(body),
      })
      const text = await response.text()
      return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }
    },
    async waitForEventSubmission(eventId, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs
      while (Date.now() < deadline) {
        const { body } = await harness.api<{ submissionId: number | null; status: string }>(`/api/events/${eventId}`)
        if (body.submissionId) return body.submissionId
        await sleep(100)
      }
      throw new Error(`hook event ${eventId} made no submission within ${timeoutMs} ms`)
    },
    async waitForSubmission(id, opts = {}) {
      const deadline = Date.now() + (opts.timeoutMs ?? 300_000)
      const wanted = opts.states ?? (TERMINAL as SubmissionState[])
      let last: SubmissionBody | undefined
      while (Date.now() < deadline) {
        last = (await harness.api<SubmissionBody>(`/api/submissions/${id}`)).body
        if (wanted.includes(last.state)) return last
        await sleep(150)
      }
      throw new Error(`submission ${id} did not reach ${wanted.join('|')}; last: ${last?.state} ${last?.statusDetail}`)
    },
    async close() {
      await app.close('immediate')
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return harness
}

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** A GitLab system hook tag push body for a project on the loopback git server. */
export function gitlabTagPush(options: {
  projectId: number
  projectPath: string
  tag: string
  after: string
  checkoutSha: string | null
  before?: string
  userId?: number
  username?: string
}) {
  const name = options.projectPath.split('/').at(-1) ?? ''
  return {
    object_kind: 'tag_push',
    event_name: 'tag_push',
    before: options.before ?? '0'.repeat(40),
    after: options.after,
    ref: `refs/tags/${options.tag}`,
    checkout_sha: options.checkoutSha,
    message: null,
    user_id: options.userId ?? 42,
    user_name: options.username ?? 'alice',
    user_username: options.username ?? 'alice',
    user_email: '',
    user_avatar: null,
    project_id: options.projectId,
    project: {
      id: options.projectId,
      name,
      web_url: `https://gitlab.example.test/${options.projectPath}`,
      git_http_url: `https://gitlab.example.test/${options.projectPath}.git`,
      git_ssh_url: `git@gitlab.example.test:${options.projectPath}.git`,
      namespace: options.projectPath.split('/')[0],
      path_with_namespace: options.projectPath,
      default_branch: 'main',
      visibility_level: 0,
    },
    commits: [],
    total_commits_count: 0,
    push_options: {},
  }
}
