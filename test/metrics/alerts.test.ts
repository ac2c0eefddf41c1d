import pino from 'pino'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import type { AppContext } from '../../src/app/context.ts'
import { AlertChecker, type AlertNotice } from '../../src/metrics/alert-checker.ts'
import { evaluateAlerts } from '../../src/metrics/alert-conditions.ts'
import { alertsConfigSchema, type AlertsConfig } from '../../src/metrics/alerts-config.ts'
import { startProctor, type Harness } from '../support/proctor-harness.ts'
import {
  insertSubmission,
  startWebhookReceiver,
  type WebhookReceiver,
} from '../dashboard/support/fixtures.ts'

let proctor: Harness
let webhook: WebhookReceiver
const log = pino({ level: 'silent' })

/**
 * The harness's context with other alert settings: the checker under test is built here.
 * The disk check is off unless a test turns it on: the machine's disk is not under test.
 */
function contextWith(alerts: Partial<AlertsConfig>): AppContext {
  const ctx = proctor.app.ctx
  const settings = {
    webhookUrl: webhook.url,
    diskMinFreePercent: 0,
    diskMinFreeBytes: 0,
    ...alerts,
  }
  return { ...ctx, config: { ...ctx.config, alerts: alertsConfigSchema.parse(settings) } }
}

beforeAll(async () => {
  proctor = await startProctor({}, { workerSlots: 0 })
  webhook = await startWebhookReceiver()
})

afterEach(async () => {
  // Each test starts from a store with nothing alarming in it.
  const { db } = proctor.app.ctx.store
  await db.deleteFrom('outbox').execute()
  await db.deleteFrom('workers').execute()
  await db.updateTable('submissions').set({ state: 'scored' }).execute()
  webhook.bodies.length = 0
  webhook.status = 200
})

afterAll(async () => {
  await webhook?.close()
  await proctor?.close()
})

async function stuckSubmission(state: 'queued' | 'received', minutesAgo: number): Promise<number> {
  const at = new Date(Date.now() - minutesAgo * 60_000)
  return insertSubmission(proctor.app.ctx.store.db, { state, at, stateChangedAt: at })
}

async function silentWorker(id: string, minutesAgo: number): Promise<void> {
  const at = new Date(Date.now() - minutesAgo * 60_000).toISOString()
  await proctor.app.ctx.store.db
    .insertInto('workers')
    .values({
      id,
      host: 'gpu-1',
      queues_json: '["*"]',
      capabilities_json: '[]',
      slots: 1,
      state: 'alive',
      started_at: at,
      heartbeat_at: at,
    })
    .execute()
}

describe('alert conditions', () => {
  it('finds submissions waiting past their state threshold, silent workers, a stuck outbox and a full disk', async () => {
    const queued = await stuckSubmission('queued', 90)
    await stuckSubmission('queued', 5)
    await silentWorker('w-silent', 20)
    await silentWorker('w-fine', 0)
    const { db } = proctor.app.ctx.store
    const old = new Date(Date.now() - 3_600_000).toISOString()
    await db
      .insertInto('outbox')
      .values({
        target: 'platform',
        submission_id: queued,
        payload_json: '{}',
        state: 'pending',
        next_attempt_at: old,
        created_at: old,
      })
      .execute()

    const ctx = contextWith({
      stuckSeconds: { received: 600, queued: 3600, building: 3600, evaluating: 3600 },
      workerSilentSeconds: 300,
      outboxStuckSeconds: 600,
      diskMinFreePercent: 100,
    })
    const conditions = await evaluateAlerts(ctx)
    expect(conditions.map((c) => c.key).sort()).toEqual(
      [
        'disk_low:' + ctx.config.builder.workDir,
        'outbox_stuck:platform',
        'submission_stuck:queued',
        'worker_lost:w-silent',
      ].sort(),
    )
    const stuck = conditions.find((c) => c.kind === 'submission_stuck')
    expect(stuck?.subjects).toEqual([String(queued)])
    expect(stuck?.summary).toMatch(
      new RegExp(
        `1 submission\\(s\\) queued for longer than 60 min: #${queued} \\(iris, 1 h 30 min\\)`,
      ),
    )
    expect(conditions.find((c) => c.kind === 'worker_lost')?.summary).toMatch(
      /worker w-silent on gpu-1 has not sent a heartbeat for 20 min/,
    )
  })

  it('counts workers the reaper marked lost, for a day after their last heartbeat', async () => {
    const { db } = proctor.app.ctx.store
    const worker = (id: string, minutesAgo: number) => {
      const at = new Date(Date.now() - minutesAgo * 60_000).toISOString()
      return {
        id,
        host: 'cpu-3',
        queues_json: '["*"]',
        capabilities_json: '[]',
        slots: 1,
        state: 'lost' as const,
        started_at: at,
        heartbeat_at: at,
      }
    }
    await db
      .insertInto('workers')
      .values([worker('w-lost-recently', 10), worker('w-lost-long-ago', 3 * 24 * 60)])
      .execute()
    const keys = (await evaluateAlerts(contextWith({}))).map((c) => c.key)
    expect(keys).toContain('worker_lost:w-lost-recently')
    expect(keys).not.toContain('worker_lost:w-lost-long-ago')
  })

  it('shows the same conditions on the dashboard API', async () => {
    await silentWorker('w-dashboard', 60)
    const response = await proctor.api<{ alerts: { key: string; severity: string }[] }>(
      '/api/alerts',
    )
    expect(response.status).toBe(200)
    expect(response.body.alerts).toContainEqual(
      expect.objectContaining({ key: 'worker_lost:w-dashboard', severity: 'critical' }),
    )
  })
})

describe('AlertChecker', () => {
  it('posts a notice when conditions start, stays quiet while they last, and posts again when they end', async () => {
    await silentWorker('w-lost', 30)
    const checker = new AlertChecker(
      contextWith({ workerSilentSeconds: 300, repeatEverySeconds: 3600 }),
      log,
    )

    await checker.check()
    expect(webhook.bodies).toHaveLength(1)
    const first = webhook.bodies[0] as AlertNotice
    expect(first).toMatchObject({ source: 'proctor', resolved: [] })
    expect(first.firing.map((c) => c.key)).toEqual(['worker_lost:w-lost'])
    expect(first.text).toMatch(/^proctor: 1 new alert\(s\)\n• \[critical\] worker w-lost/)

    await checker.check()
    expect(webhook.bodies).toHaveLength(1)

    await proctor.app.ctx.store.db
      .updateTable('workers')
      .set({ state: 'stopped' })
      .where('id', '=', 'w-lost')
      .execute()
    await checker.check()
    expect(webhook.bodies).toHaveLength(2)
    const second = webhook.bodies[1] as AlertNotice
    expect(second.firing).toEqual([])
    expect(second.resolved.map((c) => c.key)).toEqual(['worker_lost:w-lost'])
    expect(second.active).toEqual([])
  })

  it('repeats a lasting condition after repeatEverySeconds', async () => {
    await stuckSubmission('received', 60)
    const checker = new AlertChecker(contextWith({ repeatEverySeconds: 1 }), log)
    await checker.check()
    await new Promise((resolve) => setTimeout(resolve, 1_100))
    await checker.check()
    expect(webhook.bodies).toHaveLength(2)
    const repeat = webhook.bodies[1] as AlertNotice
    expect(repeat.firing).toEqual([])
    expect(repeat.active.map((c) => c.key)).toEqual(['submission_stuck:received'])
    expect(repeat.text).toMatch(/^proctor: 1 alert\(s\) still active/)
  })

  it('sends a refused notice again at the next check', async () => {
    await silentWorker('w-retry', 30)
    const checker = new AlertChecker(contextWith({}), log)
    webhook.status = 500
    await checker.check()
    expect(webhook.bodies).toHaveLength(1)
    webhook.status = 200
    await checker.check()
    expect(webhook.bodies).toHaveLength(2)
    expect((webhook.bodies[1] as AlertNotice).firing.map((c) => c.key)).toEqual([
      'worker_lost:w-retry',
    ])
    await checker.check()
    expect(webhook.bodies).toHaveLength(2)
  })

  it('checks on its own schedule once started, and stops cleanly', async () => {
    await silentWorker('w-timer', 30)
    const checker = new AlertChecker(contextWith({ checkEverySeconds: 1 }), log)
    checker.start()
    const deadline = Date.now() + 5_000
    while (webhook.bodies.length === 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50))
    await checker.stop()
    expect(webhook.bodies).toHaveLength(1)
  })
})
