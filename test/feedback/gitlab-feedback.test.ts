import { afterEach, describe, expect, it } from 'vitest'

import { parseConfig, type ForgeConfig } from '../../src/config/proctor-config.ts'
import { ManualClock } from '../../src/domain/clock.ts'
import { forgeFeedbackTargets } from '../../src/feedback/forge-targets.ts'
import { GitlabFeedback } from '../../src/feedback/gitlab-feedback.ts'
import { OutboxDispatcher } from '../../src/outbox/dispatcher.ts'
import { OutboxStore } from '../../src/outbox/outbox-store.ts'
import { syncOutboxRoutes } from '../../src/outbox/routes.ts'
import { secretRedactor } from '../../src/platform/secrets.ts'
import type { Store } from '../../src/store/database.ts'
import { moveSubmission } from '../../src/submissions/transitions.ts'
import {
  addSubmission,
  openTestStore,
  silentLog,
  type TestStore,
} from '../outbox/support/reporting.ts'
import { startGitlabStandIn, type GitlabStandIn } from './support/gitlab-stand-in.ts'

const API_TOKEN = 'glpat-made-up-feedback-token-42'
const PUBLIC_URL = 'https://proctor.example.test'
const SHA = '3f786850e387550fdab836ed7e6dc881de23001b'

describe('feedback on GitLab', () => {
  let ts: TestStore | undefined
  let gitlab: GitlabStandIn | undefined

  afterEach(async () => {
    await gitlab?.standIn.close()
    await ts?.close()
  })

  async function setUp(name: string, feedback: Record<string, unknown> = {}) {
    ts = await openTestStore(name)
    const { store } = ts
    gitlab = await startGitlabStandIn(API_TOKEN)
    const clock = new ManualClock('2026-03-10T12:00:00Z')
    const config = parseConfig(
      {
        database: { url: 'sqlite::memory:' },
        server: { publicUrl: PUBLIC_URL },
        forges: [
          {
            id: 'gitlab',
            kind: 'gitlab',
            baseUrl: 'https://gitlab.example.test',
            apiUrl: gitlab.apiUrl,
            apiToken: API_TOKEN,
            cloneUrl: 'git://127.0.0.1/{path}.git',
            hookSecrets: ['test-secret'],
            feedback: { commitStatus: true, issue: true, timeoutMs: 300, ...feedback },
          },
        ],
      },
      { env: {} },
    )
    const redactor = secretRedactor(config)
    const deps = {
      store,
      clock,
      log: silentLog,
      publicUrl: PUBLIC_URL,
      redact: (t: string) => redactor.redact(t),
    }
    const { targets, routes } = forgeFeedbackTargets(config.forges, deps)
    expect(routes).toEqual([{ target: 'forge:gitlab', audience: 'forge', forge: 'gitlab' }])
    await syncOutboxRoutes(store.db, routes, clock.now())
    const dispatcher = new OutboxDispatcher({ store, clock, log: silentLog }, targets, {
      pollMs: 5,
    })
    const forge = config.forges[0] as ForgeConfig
    return { store, clock, dispatcher, target: new GitlabFeedback(forge, deps) }
  }

  /** Delivers everything due, moving the clock past each throttle, until nothing is pending. */
  async function deliverAll(
    store: Store,
    clock: ManualClock,
    dispatcher: OutboxDispatcher,
  ): Promise<void> {
    for (let round = 0; round < 50; round++) {
      while ((await dispatcher.deliverDue()) > 0) {
        // Deliver what is due now.
      }
      const pending = await store.db
        .selectFrom('outbox')
        .select('id')
        .where('state', '=', 'pending')
        .execute()
      if (pending.length === 0) return
      clock.advance(1_000)
    }
    throw new Error('outbox did not drain')
  }

  it('moves the commit status pending → running → success and keeps one issue, edited in place', async () => {
    const s = await setUp('gitlab lifecycle')
    const id = await addSubmission(s.store, {
      projectId: '101',
      commit: SHA,
      tag: 'v1.0',
      challengeId: 'iris',
    })
    const moves = [
      { to: 'queued' as const, message: 'queued; 4 of 5 submissions left' },
      { to: 'building' as const, message: 'fetching commit 3f786850e387' },
      { to: 'evaluating' as const, message: 'image ready; running the phases' },
      { to: 'scored' as const, message: 'scored 0.8700' },
    ]
    for (const m of moves) {
      await moveSubmission(s.store.db, id, {
        ...m,
        actor: 'worker:w1',
        at: s.clock.now(),
        ...(m.to === 'scored' ? { set: { score: 0.87 } } : {}),
      })
      await deliverAll(s.store, s.clock, s.dispatcher)
    }

    expect(gitlab?.statuses.map((st) => st.state)).toEqual(['pending', 'running', 'success'])
    for (const status of gitlab?.statuses ?? []) {
      expect(status).toMatchObject({
        projectId: '101',
        sha: SHA,
        name: 'proctor',
        ref: 'v1.0',
        targetUrl: `${PUBLIC_URL}/submissions/${id}`,
      })
    }
    expect(gitlab?.statuses.at(-1)?.description).toBe('scored: scored 0.8700')
    expect(gitlab?.issues).toHaveLength(1)
    const issue = gitlab?.issues[0]
    expect(issue?.title).toBe(`proctor submission ${id} (tag v1.0)`)
    expect(issue?.labels).toBe('proctor')
    expect(issue?.description).toContain('**State:** `scored`')
    expect(issue?.description).toContain('**Score:** `0.8700`')
    expect(issue?.description).toContain(`[submission page](${PUBLIC_URL}/submissions/${id})`)
    expect(issue?.edits).toBe(3)
  })

  it('collapses the updates that queued up during an outage into one issue text', async () => {
    const s = await setUp('gitlab outage collapse')
    const id = await addSubmission(s.store, { commit: SHA, tag: 'v2.0' })
    for (const to of ['queued', 'building', 'evaluating', 'scored'] as const) {
      await moveSubmission(s.store.db, id, {
        to,
        message: `now ${to}`,
        actor: 'worker:w1',
        at: s.clock.now(),
        ...(to === 'scored' ? { set: { score: 0.5 } } : {}),
      })
    }
    await deliverAll(s.store, s.clock, s.dispatcher)

    // The commit status still walks every state in order; the issue is written once, final.
    expect(gitlab?.statuses.map((st) => st.state)).toEqual(['pending', 'running', 'success'])
    expect(gitlab?.issues).toHaveLength(1)
    expect(gitlab?.issues[0]?.edits).toBe(0)
    expect(gitlab?.issues[0]?.description).toContain('**State:** `scored`')
  })

  it('creates the issue once and edits nothing when the same update is delivered twice', async () => {
    const s = await setUp('gitlab duplicate delivery')
    const id = await addSubmission(s.store, { commit: SHA })
    await moveSubmission(s.store.db, id, {
      to: 'queued',
      message: 'queued',
      actor: 'proctor',
      at: s.clock.now(),
    })
    // A lease that expired mid-delivery: two dispatchers end up holding the same message.
    const [message] = await new OutboxStore(s.store, s.clock).claim({
      targets: ['forge:gitlab'],
      limit: 1,
      leaseMs: 1,
    })
    if (!message) throw new Error('no message claimed')
    const signal = new AbortController().signal

    expect(await s.target.deliver(message, signal)).toEqual({ outcome: 'delivered' })
    s.clock.advance(60_000)
    expect(await s.target.deliver(message, signal)).toEqual({ outcome: 'delivered' })

    expect(gitlab?.issues).toHaveLength(1)
    expect(gitlab?.issues[0]?.edits).toBe(0)
    expect(gitlab?.statuses.map((st) => st.state)).toEqual(['pending'])
    expect(gitlab?.standIn.received.filter((r) => r.method === 'POST')).toHaveLength(2)
  })

  it('finds the issue a lost create made instead of opening a second one', async () => {
    const s = await setUp('gitlab lost create', { commitStatus: false })
    const id = await addSubmission(s.store, { commit: SHA })
    await moveSubmission(s.store.db, id, {
      to: 'queued',
      message: 'queued',
      actor: 'proctor',
      at: s.clock.now(),
    })
    gitlab!.hangNextCreateMs = 1_000

    expect(await s.dispatcher.deliverDue()).toBe(1)
    const failed = await s.store.db
      .selectFrom('outbox')
      .select(['state', 'last_error', 'next_attempt_at'])
      .executeTakeFirstOrThrow()
    expect(failed.state).toBe('pending')
    expect(failed.last_error).toMatch(/no answer within 300 ms/)

    s.clock.set(new Date(new Date(failed.next_attempt_at).getTime() + 1))
    expect(await s.dispatcher.deliverDue()).toBe(1)
    expect(gitlab?.issues).toHaveLength(1)
    expect(gitlab?.standIn.received.filter((r) => r.method === 'GET')).toHaveLength(1)
    const done = await s.store.db.selectFrom('outbox').select('state').executeTakeFirstOrThrow()
    expect(done.state).toBe('delivered')
  })

  it('edits at most once per interval, and only when the text changed', async () => {
    const s = await setUp('gitlab throttle', { commitStatus: false, issueMinIntervalSeconds: 5 })
    const id = await addSubmission(s.store, { commit: SHA })
    await moveSubmission(s.store.db, id, {
      to: 'queued',
      message: 'queued',
      actor: 'proctor',
      at: s.clock.now(),
    })
    expect(await s.dispatcher.deliverDue()).toBe(1)
    await moveSubmission(s.store.db, id, {
      to: 'building',
      message: 'building',
      actor: 'w',
      at: s.clock.now(),
    })
    expect(await s.dispatcher.deliverDue()).toBe(1)
    const deferred = await s.store.db
      .selectFrom('outbox')
      .select(['state', 'attempts', 'next_attempt_at'])
      .where('state', '=', 'pending')
      .executeTakeFirstOrThrow()
    expect(deferred.attempts).toBe(0)
    expect(deferred.next_attempt_at).toBe('2026-03-10T12:00:05.000Z')
    expect(gitlab?.issues[0]?.edits).toBe(0)

    s.clock.advance(4_999)
    expect(await s.dispatcher.deliverDue()).toBe(0)
    s.clock.advance(1)
    expect(await s.dispatcher.deliverDue()).toBe(1)
    expect(gitlab?.issues[0]?.edits).toBe(1)
    expect(gitlab?.issues[0]?.description).toContain('**State:** `building`')
  })

  it('reports a rejection and an over-quota failure with the reason and the next step', async () => {
    const s = await setUp('gitlab rejections')
    const rejected = await addSubmission(s.store, { projectId: '201', commit: SHA, tag: 'v9' })
    await moveSubmission(s.store.db, rejected, {
      to: 'rejected',
      reasonCode: 'manifest_missing',
      message: 'there is no crowdai.json at the root of commit 3f786850e387',
      actor: 'proctor',
      at: s.clock.now(),
    })
    const overQuota = await addSubmission(s.store, {
      projectId: '201',
      commit: SHA.replace('3f', '4e'),
      tag: 'v10',
    })
    await moveSubmission(s.store.db, overQuota, {
      to: 'failed',
      reasonCode: 'quota_exceeded',
      message:
        'over quota: 5 of 5 submissions used in the last 24 h; the next slot frees at 2026-03-11T08:00:00Z',
      actor: 'proctor',
      at: s.clock.now(),
    })
    await deliverAll(s.store, s.clock, s.dispatcher)

    expect(gitlab?.statuses.map((st) => [st.ref, st.state]).sort()).toEqual([
      ['v10', 'failed'],
      ['v9', 'failed'],
    ])
    const first = gitlab?.issues.find((i) => i.title.includes('(tag v9)'))
    const second = gitlab?.issues.find((i) => i.title.includes('(tag v10)'))
    expect(first?.description).toContain('`manifest_missing`')
    expect(first?.description).toContain(
      'there is no crowdai.json at the root of commit 3f786850e387',
    )
    expect(first?.description).toContain('Next step: Add crowdai.json at the repository root')
    expect(second?.description).toContain('`quota_exceeded`')
    expect(second?.description).toContain('the next slot frees at 2026-03-11T08:00:00Z')
  })

  it('shows the log tail the challenge allows, without secrets, mentions or broken fences', async () => {
    const s = await setUp('gitlab log tail', { commitStatus: false, logTailLines: 3 })
    const snapshot = {
      scoring: { hidden: false, decimals: 4 },
      phases: [
        { name: 'predict', image: 'participant', participantLogs: 'tail' },
        { name: 'score', image: { build: 'grader' }, participantLogs: 'none' },
      ],
    }
    const id = await addSubmission(s.store, { commit: SHA, snapshot })
    const evaluation = await s.store.db
      .insertInto('evaluations')
      .values({
        submission_id: id,
        number: 1,
        kind: 'first',
        state: 'failed',
        created_at: '2026-03-10T12:00:00Z',
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    await s.store.db
      .insertInto('stage_runs')
      .values({
        evaluation_id: Number(evaluation.id),
        attempt: 1,
        stage: 'predict',
        started_at: '2026-03-10T12:00:00Z',
        finished_at: '2026-03-10T12:01:02Z',
        outcome: 'crashed',
        wall_ms: 62_000,
      })
      .execute()
    await s.store.db
      .insertInto('logs')
      .values({
        evaluation_id: Number(evaluation.id),
        stage: 'predict',
        content: [
          'loading model',
          'epoch 1',
          `token=${API_TOKEN}`,
          'ping @everyone ````',
          'Traceback: boom',
        ].join('\n'),
        bytes_total: 100,
        bytes_elided: 0,
        created_at: '2026-03-10T12:01:02Z',
      })
      .execute()
    await moveSubmission(s.store.db, id, {
      to: 'queued',
      message: 'queued',
      actor: 'proctor',
      at: s.clock.now(),
    })
    await moveSubmission(s.store.db, id, {
      to: 'failed',
      reasonCode: 'crashed',
      message: 'predict exited with code 1',
      actor: 'worker:w1',
      at: s.clock.now(),
      evaluationId: Number(evaluation.id),
    })
    await deliverAll(s.store, s.clock, s.dispatcher)

    const description = gitlab?.issues[0]?.description ?? ''
    expect(description).toContain('### Log of `predict` (last lines)')
    expect(description).toContain('token=[redacted]')
    expect(description).not.toContain(API_TOKEN)
    expect(description).not.toContain('loading model')
    expect(description).toContain(
      '`````text\ntoken=[redacted]\nping @everyone ````\nTraceback: boom\n`````',
    )
    expect(description).toContain('| `predict` | 1 | `crashed` | 1 min 2 s |')
  })
})
