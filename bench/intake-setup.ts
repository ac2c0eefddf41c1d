import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

import { pino } from 'pino'

import type { AppContext } from '../src/app/context.ts'
import { ChallengeCatalog } from '../src/challenges/catalog.ts'
import { loadChallengeFile } from '../src/config/challenge.ts'
import { parseConfig } from '../src/config/proctor-config.ts'
import { systemClock } from '../src/domain/clock.ts'
import { loadParticipantDirectory, parseParticipants } from '../src/participants/directory.ts'
import { EmbeddedPlatform } from '../src/platform/embedded.ts'
import { JobQueue } from '../src/queue/job-queue.ts'
import { migrate, openStore } from '../src/store/database.ts'

/**
 * What the intake benchmarks share: a real store (an SQLite file, WAL + synchronous=FULL
 * as `openStore` sets it), the system clock, one challenge, one participant, and a GitLab
 * forge whose clone URL is the local git daemon.
 */
export const CHALLENGE = 'flower-classification'
export const GITLAB_TOKEN = 'bench-secret'
export const GIT_PORT = Number(process.env.PROCTOR_GIT_PORT ?? 9418)
export const GIT_ROOT =
  process.env.PROCTOR_GIT_ROOT ?? path.resolve(import.meta.dirname, '../.proctor/git')

export interface BenchContext {
  ctx: AppContext
  dir: string
  close(): Promise<void>
}

export async function createBenchContext(): Promise<BenchContext> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'proctor-bench-'))
  const config = parseConfig(
    {
      database: { url: `sqlite:${path.join(dir, 'proctor.db')}` },
      builder: { workDir: path.join(dir, 'work') },
      forges: [
        {
          id: 'gitlab',
          kind: 'gitlab',
          baseUrl: 'https://gitlab.example.test',
          cloneUrl: `git://127.0.0.1:${GIT_PORT}/{path}.git`,
          hookSecrets: [GITLAB_TOKEN],
        },
      ],
    },
    { env: {}, baseDir: dir },
  )
  const store = openStore(config.database.url)
  await migrate(store)
  const log = pino({ level: 'silent' })

  const challengeDir = path.join(dir, 'challenge')
  await mkdir(path.join(challengeDir, 'in'), { recursive: true })
  await mkdir(path.join(challengeDir, 'labels'), { recursive: true })
  await writeFile(path.join(challengeDir, 'in', 'x.csv'), 'x\n')
  await writeFile(path.join(challengeDir, 'labels', 'y.csv'), 'y\n')
  const challengeFile = path.join(challengeDir, 'challenge.yaml')
  await writeFile(
    challengeFile,
    JSON.stringify({
      id: CHALLENGE,
      title: 'bench',
      data: { inputs: 'in', labels: 'labels' },
      phases: [
        { name: 'predict', image: 'participant' },
        { name: 'score', image: { digest: `g@sha256:${'ab'.repeat(32)}` } },
      ],
      quota: { limit: 100_000, window: '24h' },
    }),
  )
  const challenge = loadChallengeFile(challengeFile)

  const ctx: AppContext = {
    config,
    store,
    clock: systemClock,
    log,
    queue: new JobQueue(store, systemClock),
    challenges: new ChallengeCatalog(new Map([[CHALLENGE, challenge]]), log),
    platform: new EmbeddedPlatform(),
  }
  await loadParticipantDirectory(
    store.db,
    parseParticipants(
      { participants: [{ username: 'alice', identities: [{ forge: 'gitlab', userId: 42 }] }] },
      'bench',
    ),
    systemClock,
  )
  return {
    ctx,
    dir,
    async close() {
      await store.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

const execFileAsync = promisify(execFile)

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('git', args, {
    cwd,
    env: {
      ...process.env,
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 'alice',
      GIT_AUTHOR_EMAIL: 'alice@example.test',
      GIT_COMMITTER_NAME: 'alice',
      GIT_COMMITTER_EMAIL: 'alice@example.test',
    },
  })
  return stdout.trim()
}

export interface PushedTag {
  projectPath: string
  tag: string
  commit: string
}

/**
 * Makes a project on the git daemon with `tags` tags, each on its own commit carrying
 * crowdai.json, and pushes them over git:// in one push (a benchmark shortcut: participants
 * push one tag at a time).
 */
export async function pushProject(projectPath: string, tags: number): Promise<PushedTag[]> {
  const bare = path.join(GIT_ROOT, `${projectPath}.git`)
  await rm(bare, { recursive: true, force: true })
  await mkdir(path.dirname(bare), { recursive: true })
  await git(GIT_ROOT, 'init', '--quiet', '--bare', bare)
  const work = await mkdtemp(path.join(os.tmpdir(), 'proctor-bench-git-'))
  await git(work, 'init', '--quiet', '--initial-branch=main')
  await writeFile(
    path.join(work, 'crowdai.json'),
    JSON.stringify({ challenge_id: CHALLENGE, authors: ['alice'] }),
  )

  const pushed: PushedTag[] = []
  for (let i = 0; i < tags; i++) {
    await writeFile(path.join(work, 'model.txt'), `model ${i}\n`)
    await git(work, 'add', '--all')
    await git(work, 'commit', '--quiet', '--message', `model ${i}`)
    await git(work, 'tag', `v${i}`)
    pushed.push({ projectPath, tag: `v${i}`, commit: await git(work, 'rev-parse', 'HEAD') })
  }
  await git(
    work,
    'push',
    '--quiet',
    `git://127.0.0.1:${GIT_PORT}/${projectPath}.git`,
    'main',
    '--tags',
  )
  await rm(work, { recursive: true, force: true })
  return pushed
}

export async function removeProject(projectPath: string): Promise<void> {
  await rm(path.join(GIT_ROOT, `${projectPath}.git`), { recursive: true, force: true })
  // The namespace folder is the benchmark's own (bench-<time>-<n>): leave nothing behind.
  await rm(path.join(GIT_ROOT, path.dirname(projectPath)), { recursive: true, force: true })
}

/** A GitLab tag_push body (the shape of GitLab 17's system hook). */
export function tagPushBody(
  projectId: number,
  projectPath: string,
  tag: string,
  commit: string,
): string {
  return JSON.stringify({
    object_kind: 'tag_push',
    event_name: 'tag_push',
    before: '0'.repeat(40),
    after: commit,
    ref: `refs/tags/${tag}`,
    checkout_sha: commit,
    message: null,
    user_id: 42,
    user_name: 'Alice',
    user_username: 'alice',
    user_email: '',
    user_avatar: null,
    project_id: projectId,
    project: {
      id: projectId,
      name: projectPath.split('/').at(-1),
      path_with_namespace: projectPath,
      default_branch: 'main',
      web_url: `https://gitlab.example.test/${projectPath}`,
    },
    commits: [],
    total_commits_count: 0,
    push_options: {},
  })
}

/**
 * Round-robin over projects: v0 of each, then v1 of each… Pushes from many participants
 * interleave in time; delivering one project's 24 tags first would make every runner wait
 * on the same fetch and measure the git daemon, not intake.
 */
export function interleave<T>(lists: readonly (readonly T[])[]): T[] {
  const out: T[] = []
  const longest = Math.max(0, ...lists.map((l) => l.length))
  for (let i = 0; i < longest; i++)
    for (const list of lists) if (i < list.length) out.push(list[i] as T)
  return out
}

/**
 * How long one durable commit takes on this disk right now (SQLite WAL, synchronous=FULL,
 * one-row transactions for `ms`): the floor under every figure that writes. A shared machine
 * whose disk is busy shows it here first.
 */
export async function probeCommitMs(dir: string, ms = 1000): Promise<number> {
  const { default: SQLite } = await import('better-sqlite3')
  const db = new SQLite(path.join(dir, 'probe.db'))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec('create table if not exists probe (x integer)')
  const insert = db.prepare('insert into probe values (1)')
  const commit = db.transaction(() => insert.run())
  const started = performance.now()
  let n = 0
  while (performance.now() - started < ms) {
    commit()
    n++
  }
  db.close()
  return (performance.now() - started) / n
}
