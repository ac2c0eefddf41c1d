import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import Fastify, { type FastifyInstance } from 'fastify'
import { pino } from 'pino'

import type { AppContext } from '../../../src/app/context.ts'
import { ChallengeCatalog } from '../../../src/challenges/catalog.ts'
import { loadChallengeFile, type Challenge } from '../../../src/config/challenge.ts'
import { parseConfig, type ProctorConfig } from '../../../src/config/proctor-config.ts'
import { ManualClock } from '../../../src/domain/clock.ts'
import { hookRoutes } from '../../../src/intake/hook-routes.ts'
import { loadParticipantDirectory, parseParticipants } from '../../../src/participants/directory.ts'
import { EmbeddedPlatform } from '../../../src/platform/embedded.ts'
import type { Platform } from '../../../src/platform/platform.ts'
import { JobQueue } from '../../../src/queue/job-queue.ts'
import { migrate, openStore, type Store } from '../../../src/store/database.ts'
import { TEST_ENV } from '../../support/env.ts'

export const GITLAB_SECRETS = ['test-secret', 'made-up-shared-secret-7Qx2']
export const GITHUB_SECRET = 'made-up-github-secret'
export const GITEA_SECRET = 'made-up-gitea-secret'

export const FLOWERS = 'flower-classification'

export interface ChallengeOptions {
  id?: string
  /** YAML lines merged into the challenge file (quota, rounds, tagPattern…). */
  extra?: Record<string, unknown>
}

export interface TestContextOptions {
  challenges?: ChallengeOptions[]
  platform?: Platform
  participants?: unknown
  start?: string
  bodyLimitBytes?: number
}

export interface TestContext {
  readonly ctx: AppContext
  readonly clock: ManualClock
  readonly store: Store
  readonly dir: string
  close(): Promise<void>
}

/** Participants most tests use: alice (gitlab 42, github, gitea), bob (team), carol. */
export const DEFAULT_PARTICIPANTS = {
  participants: [
    {
      username: 'alice',
      displayName: 'Alice',
      identities: [
        { forge: 'gitlab', userId: 42, username: 'alice' },
        { forge: 'github', userId: 98765432, username: 'alice-ng' },
        { forge: 'gitea', userId: 217, username: 'alice' },
      ],
    },
    {
      username: 'bob',
      team: 'flowers',
      identities: [{ forge: 'gitlab', userId: 43, username: 'bob' }],
    },
    { username: 'carol', team: 'flowers', identities: [{ forge: 'gitlab', userId: 44 }] },
  ],
}

/**
 * A real store (SQLite file in a temp folder), a manual clock, the queue, challenges written
 * as YAML and loaded like production ones, the embedded platform and forges whose clone URL
 * is the local git daemon.
 */
export async function createTestContext(options: TestContextOptions = {}): Promise<TestContext> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'proctor-intake-'))
  const config: ProctorConfig = parseConfig(
    {
      server: { bodyLimitBytes: options.bodyLimitBytes ?? 1024 * 1024 },
      database: { url: `sqlite:${path.join(dir, 'proctor.db')}` },
      builder: { workDir: path.join(dir, 'work') },
      worker: { maxAttempts: 3 },
      forges: [
        {
          id: 'gitlab',
          kind: 'gitlab',
          baseUrl: 'https://gitlab.example.test',
          cloneUrl: `git://127.0.0.1:${TEST_ENV.gitPort}/{path}.git`,
          hookSecrets: GITLAB_SECRETS,
        },
        {
          id: 'github',
          kind: 'github',
          baseUrl: 'https://github.com',
          cloneUrl: `git://127.0.0.1:${TEST_ENV.gitPort}/{path}.git`,
          hookSecrets: [GITHUB_SECRET],
        },
        {
          id: 'gitea',
          kind: 'gitea',
          baseUrl: 'https://git.example.org',
          cloneUrl: `git://127.0.0.1:${TEST_ENV.gitPort}/{path}.git`,
          hookSecrets: [GITEA_SECRET],
        },
      ],
    },
    { env: {}, baseDir: dir },
  )

  const store = openStore(config.database.url)
  await migrate(store)
  const clock = new ManualClock(options.start ?? '2026-03-10T12:00:00Z')
  const log = pino({ level: 'silent' })
  const challenges = new Map<string, Challenge>()
  for (const spec of options.challenges ?? [{}]) {
    const challenge = await writeChallenge(dir, spec)
    challenges.set(challenge.definition.id, challenge)
  }

  const ctx: AppContext = {
    config,
    store,
    clock,
    log,
    queue: new JobQueue(store, clock),
    challenges: new ChallengeCatalog(challenges, log),
    platform: options.platform ?? new EmbeddedPlatform(),
  }
  const entries = parseParticipants(options.participants ?? DEFAULT_PARTICIPANTS, 'test', [
    'gitlab',
    'github',
    'gitea',
  ])
  await loadParticipantDirectory(store.db, entries, clock)

  return {
    ctx,
    clock,
    store,
    dir,
    async close() {
      await store.close().catch(() => undefined)
      await rm(dir, { recursive: true, force: true })
    },
  }
}

async function writeChallenge(root: string, spec: ChallengeOptions): Promise<Challenge> {
  const id = spec.id ?? FLOWERS
  const dir = path.join(root, 'challenges', id)
  await mkdir(path.join(dir, 'data', 'inputs'), { recursive: true })
  await mkdir(path.join(dir, 'data', 'labels'), { recursive: true })
  await writeFile(path.join(dir, 'data', 'inputs', 'test.csv'), 'x\n1\n')
  await writeFile(path.join(dir, 'data', 'labels', 'labels.csv'), 'y\n0\n')
  const definition = {
    id,
    title: `Challenge ${id}`,
    data: { inputs: 'data/inputs', labels: 'data/labels' },
    phases: [
      { name: 'predict', image: 'participant' },
      { name: 'score', image: { digest: `proctor/grader@sha256:${'ab'.repeat(32)}` } },
    ],
    quota: { limit: 5, window: '24h' },
    ...spec.extra,
  }
  const file = path.join(dir, 'challenge.yaml')
  await writeFile(file, JSON.stringify(definition, null, 2)) // JSON is YAML
  return loadChallengeFile(file)
}

/** A Fastify app with only the hook routes, as the API server registers them. */
export async function buildHookApp(ctx: AppContext): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(hookRoutes, { ctx })
  await app.ready()
  return app
}

/** Removes a test's project and its namespace folder (unique to the test) from the daemon's root. */
export async function removeProjectAndNamespace(project: {
  path: string
  remove(): Promise<void>
}): Promise<void> {
  await project.remove()
  await rm(path.join(TEST_ENV.gitRoot, path.dirname(project.path)), {
    recursive: true,
    force: true,
  })
}

/** A fresh namespace per test, so each test has its own repositories on the git daemon. */
export function uniqueNamespace(prefix = 't'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`
}

export async function countRows(store: Store): Promise<{
  events: number
  ignored: number
  submissions: number
  jobs: number
  charges: number
}> {
  const count = async (table: 'hook_events' | 'submissions' | 'jobs' | 'quota_charges') =>
    Number(
      (
        await store.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    )
  const ignored = await store.db
    .selectFrom('hook_events')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('status', '=', 'ignored')
    .executeTakeFirstOrThrow()
  return {
    events: await count('hook_events'),
    ignored: Number(ignored.n),
    submissions: await count('submissions'),
    jobs: await count('jobs'),
    charges: await count('quota_charges'),
  }
}
