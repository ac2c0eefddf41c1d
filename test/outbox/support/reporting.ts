import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'

import { pino, type Logger } from 'pino'

import type { AppContext } from '../../../src/app/context.ts'
import { ChallengeCatalog } from '../../../src/challenges/catalog.ts'
import type { Challenge } from '../../../src/config/challenge.ts'
import { parseConfig } from '../../../src/config/proctor-config.ts'
import type { Clock } from '../../../src/domain/clock.ts'
import type { SubmissionState } from '../../../src/domain/states.ts'
import { EmbeddedPlatform } from '../../../src/platform/embedded.ts'
import { JobQueue } from '../../../src/queue/job-queue.ts'
import { migrate, openStore, type Store } from '../../../src/store/database.ts'

/** A migrated SQLite file in its own temp folder, named after the test. */
export interface TestStore {
  readonly store: Store
  readonly dir: string
  close(): Promise<void>
}

export async function openTestStore(name: string): Promise<TestStore> {
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, 40)
  const dir = await mkdtemp(path.join(os.tmpdir(), `proctor-${slug}-`))
  const store = openStore(`sqlite:${path.join(dir, 'proctor.db')}`)
  await migrate(store)
  return {
    store,
    dir,
    async close() {
      await store.close().catch(() => undefined)
      await rm(dir, { recursive: true, force: true })
    },
  }
}

export const silentLog: Logger = pino({ level: 'silent' })

export async function addParticipant(
  store: Store,
  p: { username: string; team?: string; platformId?: string; displayName?: string },
): Promise<number> {
  const row = await store.db
    .insertInto('participants')
    .values({
      username: p.username,
      display_name: p.displayName ?? null,
      team: p.team ?? null,
      platform_id: p.platformId ?? null,
      created_at: '2026-01-01T00:00:00.000Z',
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return Number(row.id)
}

export interface SubmissionSpec {
  challengeId?: string
  roundId?: string | null
  participantId?: number | null
  quotaSubject?: string | null
  forge?: string
  projectId?: string
  projectPath?: string
  tag?: string
  commit?: string
  state?: SubmissionState
  platformSubmissionId?: string | null
  score?: number | null
  debug?: boolean
  createdAt?: string
  stateChangedAt?: string
  manifestExtra?: Record<string, unknown>
  snapshot?: unknown
  description?: string | null
}

let nextCommit = 1

/** A submission row with sensible defaults; returns its id. */
export async function addSubmission(store: Store, spec: SubmissionSpec = {}): Promise<number> {
  const n = nextCommit++
  const at = spec.createdAt ?? '2026-01-01T00:00:00.000Z'
  const event = await store.db
    .insertInto('hook_events')
    .values({
      forge: spec.forge ?? 'gitlab',
      event_kind: 'tag_push',
      status: 'processed',
      received_at: at,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  const row = await store.db
    .insertInto('submissions')
    .values({
      event_id: Number(event.id),
      challenge_id: spec.challengeId ?? 'iris',
      round_id: spec.roundId ?? null,
      forge: spec.forge ?? 'gitlab',
      project_id: spec.projectId ?? '101',
      project_path: spec.projectPath ?? 'alice/iris',
      tag: spec.tag ?? `v${n}`,
      commit_sha: spec.commit ?? n.toString(16).padStart(40, 'a'),
      participant_id: spec.participantId ?? null,
      pusher_username: null,
      quota_subject: spec.quotaSubject ?? null,
      authors_json: '[]',
      description: spec.description ?? null,
      manifest_extra_json: JSON.stringify(spec.manifestExtra ?? {}),
      debug: spec.debug ? 1 : 0,
      state: spec.state ?? 'received',
      status_detail: 'received',
      platform_submission_id: spec.platformSubmissionId ?? null,
      challenge_snapshot_json: spec.snapshot === undefined ? null : JSON.stringify(spec.snapshot),
      archive: 'pending',
      score: spec.score ?? null,
      created_at: at,
      updated_at: at,
      state_changed_at: spec.stateChangedAt ?? at,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return Number(row.id)
}

/** One request a stand-in received, with its raw body. */
export interface ReceivedRequest {
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
  readonly headers: IncomingMessage['headers']
  readonly body: string
  readonly json: unknown
  readonly at: number
}

export type StandInHandler = (
  request: ReceivedRequest,
  response: ServerResponse,
) => void | Promise<void>

/** A real HTTP server on 127.0.0.1 and an ephemeral port, logging every request. */
export interface StandIn {
  readonly url: string
  readonly received: ReceivedRequest[]
  close(): Promise<void>
}

export async function startStandIn(handler: StandInHandler): Promise<StandIn> {
  const received: ReceivedRequest[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const url = new URL(req.url ?? '/', 'http://stand-in')
      let json: unknown = null
      try {
        json = body ? (JSON.parse(body) as unknown) : null
      } catch {
        json = null
      }
      const request: ReceivedRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body,
        json,
        at: Date.now(),
      }
      received.push(request)
      Promise.resolve(handler(request, res)).catch((err: unknown) => {
        res.statusCode = 500
        res.end(JSON.stringify({ message: String(err) }))
      })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' })
  response.end(JSON.stringify(body))
}

/**
 * Polls `check` until it returns true, running `tick` between tries (a test moves its
 * manual clock there). Fails with `what` when the deadline passes.
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  options: { timeoutMs?: number; intervalMs?: number; tick?: () => void | Promise<void> } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000)
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await options.tick?.()
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 10))
  }
}

/** A full AppContext over a test store: configuration parsed like production's. */
export function testContext(
  store: Store,
  clock: Clock,
  rawConfig: Record<string, unknown> = {},
  challenges: Map<string, Challenge> = new Map(),
): AppContext {
  const config = parseConfig({ database: { url: 'sqlite::memory:' }, ...rawConfig }, { env: {} })
  return {
    config,
    store,
    clock,
    log: silentLog,
    queue: new JobQueue(store, clock),
    challenges: new ChallengeCatalog(challenges, silentLog),
    platform: new EmbeddedPlatform(),
  }
}
