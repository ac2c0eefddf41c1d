import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

import pg from 'pg'

import { pushParticipantTag, type PushedTag } from '../../src/demo/participant-repo.ts'
import { openStore, type Store } from '../../src/store/database.ts'
import { startStandInPlatform, type StandInPlatform } from './stand-in-platform.ts'

const run = promisify(execFile)

export const ROOT = path.resolve(import.meta.dirname, '../..')
const HOME = process.env.PROCTOR_HOME ?? path.join(ROOT, '.proctor')
const GIT_ROOT = process.env.PROCTOR_GIT_ROOT ?? path.join(HOME, 'git')
const GIT_PORT = Number(process.env.PROCTOR_GIT_PORT ?? 9418)
const REGISTRY = process.env.PROCTOR_REGISTRY_ADDR ?? '127.0.0.1:5000'
const BUSYBOX = process.env.PROCTOR_BUSYBOX_IMAGE ?? 'proctor/busybox:1'

/**
 * The drills' own PostgreSQL cluster (scripts/postgres.sh with another port and folder): a
 * drill stops it, and must not take the test suite's database down with it.
 */
export const DRILL_PG = {
  port: Number(process.env.PROCTOR_DRILL_PG_PORT ?? 55433),
  // Outside the checkout, like scripts/postgres.sh: the cluster's non-root owner must reach it.
  root: path.join('/var/tmp/proctor-pg', `${createHash('sha256').update(HOME).digest('hex').slice(0, 12)}-drill`),
}

/** How drill processes load TypeScript. */
export const NODE_IMPORTS = ['--import', 'tsx']

export const HOOK_SECRET = 'drill-hook-secret'
export const API_TOKEN = 'drill-api-token-0123456789'
export const WEBHOOK_SECRET = 'drill-webhook-secret-0123456789'

export interface DrillEnvOptions {
  /** Lease length for the workers: small, so a killed worker's jobs come back quickly. */
  leaseSeconds?: number
  apis?: number
  workers?: number
  /** How long the participant's predict phase sleeps, and the build's RUN step. */
  predictSeconds?: number
  buildSeconds?: number
  /** Quota per participant in the drill challenge. */
  quota?: number
  /** Queues the workers serve (default every queue). */
  workerQueues?: string
}

export interface ProcessHandle {
  readonly name: string
  child: ChildProcess
  readonly args: readonly string[]
  readonly env: NodeJS.ProcessEnv
}

/**
 * One drill's world: its own database on the drill cluster, a proctor configuration, a
 * challenge whose build and predict phase take a known time, a stand-in webhook platform,
 * and proctor processes (APIs and workers) started as real subprocesses that can be killed
 * with SIGKILL and started again.
 */
export class DrillEnv {
  readonly dir: string
  readonly database: string
  readonly dbUrl: string
  readonly store: Store
  readonly platform: StandInPlatform
  readonly processes = new Map<string, ProcessHandle>()
  readonly apiPorts: number[]
  readonly options: Required<DrillEnvOptions>
  readonly projectPath: string
  #tags = 0

  private constructor(
    dir: string,
    database: string,
    store: Store,
    platform: StandInPlatform,
    apiPorts: number[],
    options: Required<DrillEnvOptions>,
  ) {
    this.dir = dir
    this.database = database
    this.dbUrl = drillUrl(database)
    this.store = store
    this.platform = platform
    this.apiPorts = apiPorts
    this.options = options
    // The repository's name must be the challenge id; the namespace keeps drills apart.
    this.projectPath = `${path
      .basename(dir)
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '')}/drill`
  }

  static async create(name: string, options: DrillEnvOptions = {}): Promise<DrillEnv> {
    const full: Required<DrillEnvOptions> = {
      leaseSeconds: 3,
      apis: 1,
      workers: 2,
      predictSeconds: 3,
      buildSeconds: 3,
      quota: 1000,
      workerQueues: '*',
      ...options,
    }
    await startDrillCluster()
    const database = `drill_${name.replace(/[^a-z0-9]+/gi, '_').toLowerCase()}_${process.pid}_${Date.now() % 100000}`
    await adminQuery(`create database ${database}`)
    const dir = mkdtempSync(path.join(os.tmpdir(), `proctor-drill-${name}-`))
    const platform = await startStandInPlatform(WEBHOOK_SECRET)
    const apiPorts = await Promise.all(Array.from({ length: full.apis }, () => freePort()))
    const store = openStore(drillUrl(database))
    const env = new DrillEnv(dir, database, store, platform, apiPorts, full)
    env.#writeFiles()
    return env
  }

  get configFile(): string {
    return path.join(this.dir, 'proctor.yaml')
  }

  #writeFiles(): void {
    const challenges = path.join(this.dir, 'challenges')
    const data = path.join(challenges, 'drill')
    for (const sub of ['inputs', 'labels', 'grader'])
      mkdirSync(path.join(data, sub), { recursive: true })
    writeFileSync(path.join(data, 'inputs/x.txt'), 'drill input\n')
    writeFileSync(path.join(data, 'labels/y.txt'), 'drill labels\n')
    writeFileSync(
      path.join(data, 'grader/Dockerfile'),
      `FROM ${BUSYBOX}\nCOPY score.sh /grader/score.sh\nUSER 1000\nCMD ["/bin/sh", "/grader/score.sh"]\n`,
    )
    // The score is whatever the participant wrote: each drill submission knows its own.
    writeFileSync(
      path.join(data, 'grader/score.sh'),
      'printf \'{"score": %s}\' "$(cat /proctor/predictions/score.txt)" > /proctor/output/scores.json\n',
    )
    writeFileSync(
      path.join(challenges, 'drill.yaml'),
      [
        'id: drill',
        'title: Drill',
        `quota: { limit: ${this.options.quota}, window: 24h }`,
        'build: { builder: dockerfile, timeSeconds: 120, memoryMb: 256, maxImageMb: 64 }',
        'data: { inputs: drill/inputs, labels: drill/labels }',
        'phases:',
        '  - name: predict',
        '    image: participant',
        '    limits: { timeSeconds: 60, memoryMb: 64 }',
        '  - name: score',
        '    image: { build: drill/grader }',
        '    limits: { timeSeconds: 60, memoryMb: 64 }',
        '',
      ].join('\n'),
    )
    writeFileSync(
      path.join(this.dir, 'participants.yaml'),
      'participants:\n  - { username: alice, identities: [{ forge: gitlab, userId: "42", username: alice }] }\n',
    )
    writeFileSync(
      this.configFile,
      [
        `database: { url: '${this.dbUrl}' }`,
        `challengesDir: ${challenges}`,
        `participantsFile: ${path.join(this.dir, 'participants.yaml')}`,
        'forges:',
        '  - id: gitlab',
        '    kind: gitlab',
        '    baseUrl: https://gitlab.example.test',
        `    cloneUrl: 'git://127.0.0.1:${GIT_PORT}/{path}.git'`,
        `    hookSecrets: ['${HOOK_SECRET}']`,
        `registry: { address: '${REGISTRY}', namespace: proctor-drill }`,
        `builder: { repo2docker: ${path.join(ROOT, '.venv/bin/repo2docker')}, workDir: ${path.join(this.dir, 'work')} }`,
        `api: { tokens: [{ name: drill, token: ${API_TOKEN}, scope: operator }] }`,
        `worker: { slots: 1, leaseSeconds: ${this.options.leaseSeconds}, maxAttempts: 3 }`,
        'platform:',
        '  kind: webhook',
        '  webhook:',
        `    endpoints: [{ name: drill, url: '${this.platform.url}/hook', secret: ${WEBHOOK_SECRET} }]`,
        '    timeoutMs: 2000',
        '  outbox: { pollMs: 100, leaseSeconds: 10, backoffBaseMs: 200 }',
        'log: { level: info }',
        '',
      ].join('\n'),
    )
  }

  /** Starts the configured APIs (no worker) and workers (no API). */
  async startAll(): Promise<void> {
    for (let i = 0; i < this.options.apis; i++) this.startApi(i)
    for (let i = 0; i < this.options.workers; i++) this.startWorker(i)
    await Promise.all(this.apiPorts.map((port) => this.waitForApi(port)))
    await this.waitForWorkers(this.options.workers)
  }

  startApi(index: number): ProcessHandle {
    const port = this.apiPorts[index] ?? 0
    return this.#spawn(`api-${index}`, ['serve', '--no-worker'], {
      PROCTOR_SERVER__PORT: String(port),
    })
  }

  startWorker(index: number): ProcessHandle {
    const queues = this.options.workerQueues === '*' ? [] : ['--queues', this.options.workerQueues]
    return this.#spawn(`worker-${index}`, ['worker', '--slots', '1', ...queues], {})
  }

  #spawn(name: string, args: string[], extraEnv: NodeJS.ProcessEnv): ProcessHandle {
    const env = { ...process.env, ...extraEnv, PROCTOR_CONFIG: this.configFile }
    const fullArgs = [
      ...NODE_IMPORTS,
      path.join(ROOT, 'src/cli/main.ts'),
      '-c',
      this.configFile,
      ...args,
    ]
    const log = openSync(path.join(this.dir, `${name}.log`), 'a')
    const child = spawn(process.execPath, fullArgs, { cwd: ROOT, env, stdio: ['ignore', log, log] })
    const handle: ProcessHandle = { name, child, args: fullArgs, env }
    this.processes.set(name, handle)
    return handle
  }

  /** SIGKILL: no cleanup, no goodbye, as a power cut or the OOM killer would. */
  kill9(name: string): number {
    const handle = this.processes.get(name)
    const pid = handle?.child.pid
    if (!handle || pid === undefined) throw new Error(`no process ${name}`)
    handle.child.kill('SIGKILL')
    return pid
  }

  /** The drill process name of the worker holding a job, from the pid in its worker id. */
  processOfWorker(workerId: string | null): string | undefined {
    const pid = Number(/-(\d+)-[0-9a-f]{8}$/.exec(workerId ?? '')?.[1])
    for (const [name, handle] of this.processes) if (handle.child.pid === pid) return name
    return undefined
  }

  restart(name: string): ProcessHandle {
    const index = Number(name.split('-')[1])
    return name.startsWith('api') ? this.startApi(index) : this.startWorker(index)
  }

  async waitForApi(port: number, timeoutMs = 60_000): Promise<void> {
    await waitFor(`API on port ${port}`, timeoutMs, async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/health`)).ok
      } catch {
        return false
      }
    })
  }

  async waitForWorkers(count: number, timeoutMs = 60_000): Promise<void> {
    await waitFor(`${count} workers alive`, timeoutMs, async () => {
      const rows = await this.store.db
        .selectFrom('workers')
        .select('id')
        .where('state', '=', 'alive')
        .execute()
      return rows.length >= count
    })
  }

  /**
   * Pushes a new commit and tag whose build sleeps and whose predict phase sleeps, then
   * writes `score`; returns the tag pushed.
   */
  async pushTag(
    score: number,
    options: { buildSeconds?: number; predictSeconds?: number } = {},
  ): Promise<PushedTag> {
    const source = mkdtempSync(path.join(this.dir, 'src-'))
    const buildSleep = options.buildSeconds ?? this.options.buildSeconds
    const predictSleep = options.predictSeconds ?? this.options.predictSeconds
    writeFileSync(
      path.join(source, 'crowdai.json'),
      JSON.stringify({ challenge_id: 'drill', authors: ['alice'] }),
    )
    writeFileSync(
      path.join(source, 'Dockerfile'),
      `FROM ${BUSYBOX}\nRUN sleep ${buildSleep}\nWORKDIR /srv\nCOPY run.sh /srv/run.sh\n`,
    )
    writeFileSync(
      path.join(source, 'run.sh'),
      `#!/bin/sh\nsleep ${predictSleep}\necho ${score} > /proctor/output/score.txt\n`,
    )
    chmodSync(path.join(source, 'run.sh'), 0o755)
    const tag = `v${++this.#tags}-${Date.now()}`
    try {
      return await pushParticipantTag({
        gitRoot: GIT_ROOT,
        gitUrl: `git://127.0.0.1:${GIT_PORT}`,
        projectPath: this.projectPath,
        sourceDir: source,
        tag,
      })
    } finally {
      rmSync(source, { recursive: true, force: true })
    }
  }

  /** Adds lightweight tags on `commit` straight into the served bare repository. */
  async addTags(commit: string, tags: readonly string[]): Promise<void> {
    const bare = path.join(GIT_ROOT, `${this.projectPath}.git`)
    const input = tags.map((tag) => `create refs/tags/${tag} ${commit}\n`).join('')
    await new Promise<void>((resolve, reject) => {
      const child = spawn('git', ['-C', bare, 'update-ref', '--stdin'], {
        stdio: ['pipe', 'ignore', 'inherit'],
      })
      child.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`git update-ref exited ${code}`)),
      )
      child.stdin.end(input)
    })
  }

  /** A GitLab system hook body for a pushed tag (or any tag name on a pushed commit). */
  hookBody(pushed: PushedTag) {
    return {
      object_kind: 'tag_push',
      event_name: 'tag_push',
      before: '0'.repeat(40),
      after: pushed.after,
      ref: `refs/tags/${pushed.tag}`,
      checkout_sha: pushed.commit,
      user_id: 42,
      user_name: 'alice',
      user_username: 'alice',
      project_id: 4242,
      project: {
        id: 4242,
        name: 'drill',
        path_with_namespace: this.projectPath,
        web_url: `https://gitlab.example.test/${this.projectPath}`,
        git_http_url: `https://gitlab.example.test/${this.projectPath}.git`,
        namespace: this.projectPath.split('/')[0],
        default_branch: 'main',
      },
      commits: [],
      total_commits_count: 0,
    }
  }

  /** POSTs a hook to one API; the status, or 0 when the connection failed. */
  async postHook(
    body: unknown,
    apiIndex = 0,
    timeoutMs = 10_000,
  ): Promise<{ status: number; eventId?: number }> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.apiPorts[apiIndex]}/hooks/gitlab`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-gitlab-event': 'System Hook',
          'x-gitlab-token': HOOK_SECRET,
        },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      })
      const json = (await response.json().catch(() => ({}))) as { eventId?: number; id?: number }
      return { status: response.status, eventId: json.eventId ?? json.id }
    } catch {
      return { status: 0 }
    }
  }

  /** Posts the hook to the first API that answers, retrying while none does. */
  async submit(pushed: PushedTag): Promise<number> {
    const body = this.hookBody(pushed)
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline) {
      for (let i = 0; i < this.apiPorts.length; i++) {
        const result = await this.postHook(body, i)
        if (result.status >= 200 && result.status < 300) return this.waitForSubmissionOf(pushed.tag)
      }
      await sleep(200)
    }
    throw new Error(`no API accepted the hook for ${pushed.tag}`)
  }

  async waitForSubmissionOf(tag: string, timeoutMs = 60_000): Promise<number> {
    let id: number | undefined
    await waitFor(`a submission for tag ${tag}`, timeoutMs, async () => {
      const row = await this.store.db
        .selectFrom('submissions')
        .select('id')
        .where('tag', '=', tag)
        .executeTakeFirst()
      id = row?.id
      return id !== undefined
    })
    return id ?? -1
  }

  /** Polls until one of the submissions runs `stage`; returns which, and who holds it. */
  async waitForStage(submissionId: number | readonly number[], stage: string, timeoutMs = 120_000) {
    const ids = typeof submissionId === 'number' ? [submissionId] : [...submissionId]
    let found: { submissionId: number; workerId: string | null; attempt: number } | undefined
    await waitFor(
      `submission ${ids.join(' or ')} in stage ${stage}`,
      timeoutMs,
      async () => {
        const row = await this.store.db
          .selectFrom('submissions as s')
          .innerJoin('jobs as j', 'j.submission_id', 's.id')
          .select(['s.id', 'j.worker_id', 'j.attempt'])
          .where('s.id', 'in', ids)
          .where('s.stage', '=', stage)
          .where('j.kind', '=', 'evaluate')
          .where('j.state', '=', 'running')
          .executeTakeFirst()
        if (row) found = { submissionId: row.id, workerId: row.worker_id, attempt: row.attempt }
        return found !== undefined
      },
      20,
    )
    return found ?? { submissionId: -1, workerId: null, attempt: 0 }
  }

  async waitForTerminal(ids: readonly number[], timeoutMs = 180_000): Promise<void> {
    await waitFor(
      `submissions ${ids.join(', ')} to end`,
      timeoutMs,
      async () => {
        const rows = await this.store.db
          .selectFrom('submissions')
          .select('state')
          .where('id', 'in', ids.length > 0 ? [...ids] : [-1])
          .execute()
        return (
          rows.length === ids.length &&
          rows.every((r) => ['scored', 'failed', 'cancelled', 'rejected'].includes(r.state))
        )
      },
      250,
    )
  }

  /** Waits until the outbox has nothing pending (every report delivered or dead). */
  async waitForOutboxDrained(timeoutMs = 60_000): Promise<void> {
    await waitFor(
      'the outbox to drain',
      timeoutMs,
      async () => {
        const row = await this.store.db
          .selectFrom('outbox')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('state', '=', 'pending')
          .executeTakeFirstOrThrow()
        return Number(row.n) === 0
      },
      250,
    )
  }

  /**
   * Containers on the engine now (every one, a builder's intermediate ones included), less
   * those of proctor's test suites (`proctor.test` label) that may share the engine.
   */
  static async containerIds(): Promise<Set<string>> {
    const { stdout } = await run('docker', [
      'ps',
      '-a',
      '--no-trunc',
      '--format',
      '{{.ID}} {{.Labels}}',
    ])
    return new Set(
      stdout
        .split('\n')
        .filter((line) => line !== '' && !line.includes('proctor.test='))
        .map((line) => line.split(' ')[0] ?? ''),
    )
  }

  static async builderProcesses(): Promise<string[]> {
    const { stdout } = await run('ps', ['-eo', 'pid,args']).catch(() => ({ stdout: '' }))
    return stdout.split('\n').filter((line) => /repo2docker/.test(line) && !/ps -eo/.test(line))
  }

  async close(): Promise<void> {
    for (const handle of this.processes.values()) {
      if (handle.child.exitCode === null && handle.child.signalCode === null)
        handle.child.kill('SIGTERM')
    }
    await Promise.all(
      [...this.processes.values()].map(
        (h) =>
          new Promise<void>((resolve) => {
            if (h.child.exitCode !== null || h.child.signalCode !== null) return resolve()
            const timer = setTimeout(() => {
              h.child.kill('SIGKILL')
              resolve()
            }, 15_000)
            h.child.once('exit', () => {
              clearTimeout(timer)
              resolve()
            })
          }),
      ),
    )
    await this.store.close()
    await this.platform.close()
    await adminQuery(`drop database if exists ${this.database} with (force)`).catch(() => undefined)
    if (!process.env.PROCTOR_DRILL_KEEP) rmSync(this.dir, { recursive: true, force: true })
  }
}

export function drillUrl(database: string): string {
  return `postgres://postgres@127.0.0.1:${DRILL_PG.port}/${database}`
}

function pgScriptEnv(): NodeJS.ProcessEnv {
  return { ...process.env, PROCTOR_PG_PORT: String(DRILL_PG.port), PROCTOR_PG_ROOT: DRILL_PG.root }
}

export async function startDrillCluster(): Promise<void> {
  await run('bash', [path.join(ROOT, 'scripts/postgres.sh'), 'start'], { env: pgScriptEnv() })
}

/** `pg_ctl stop -m fast`: connections are cut, open transactions roll back. */
export async function stopDrillCluster(): Promise<void> {
  await run('bash', [path.join(ROOT, 'scripts/postgres.sh'), 'stop'], { env: pgScriptEnv() })
}

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: drillUrl('postgres') })
  await client.connect()
  try {
    await client.query(text)
  } finally {
    await client.end()
  }
}

async function freePort(): Promise<number> {
  const net = await import('node:net')
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `check` until it is true; throws naming `what` past the deadline. */
export async function waitFor(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await check()) return
    } catch {
      // The database may be down on purpose: keep polling.
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}
